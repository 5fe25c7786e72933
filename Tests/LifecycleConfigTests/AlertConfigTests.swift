import LifecycleConfig
import LifecycleEngine
import Testing

@Suite("Config: alerts")
struct AlertConfigTests {
    /// A trigger with a goal and one without; alerts start on line 9.
    static let base = """
        lifecycle:
          stages: [new, at_risk]
          initial: new
          transitions: [{from: new, to: at_risk, on: activity}]
        triggers:
          churn_risk: {on_enter: at_risk, goal: {event: any, within: 7d}}
          win_back: {on_enter: at_risk}
        alerts:

        """

    @Test("every measure, both directions, the damping and the alerts topic load")
    func loads() throws {
        let loaded = try ConfigLoader.load(text: Self.base + """
              at_risk_share: {when: "share(at_risk)", warn: "> 0.15", critical: ">=0.25", for: 10m, keep_firing_for: 5m, min_users: 1000}
              stuck: {when: "users(new, at_risk)", warn: "> 100"}
              converting: {when: "conversion_rate(churn_risk, 1d)", critical: "< 0.05", min_volume: 30}
              quiet: {when: " events( 10m ) ", warn: "< 1000", critical: "< 100"}
              behind: {when: "lag", critical: "> 100000"}
              fired: {when: "fired(win_back, 1h)", warn: "> 5"}
              converted: {when: "converted(churn_risk, 1h)", warn: "> 5"}
            kafka: {alerts_topic: ops.alerts}
            """, file: "t.yaml")
        let alerts = loaded.compiled.alerts
        #expect(alerts.map(\.name) == ["at_risk_share", "stuck", "converting", "quiet", "behind", "fired", "converted"])
        #expect(alerts[0].warn == AlertThreshold(.greater, 0.15) && alerts[0].critical == AlertThreshold(.greaterOrEqual, 0.25))
        #expect(alerts[0].critical?.description == ">= 0.25" && alerts[3].critical?.description == "< 100")
        #expect(loaded.rules.alerts[0].holdFor == 10 * Millis.minute && loaded.rules.alerts[0].keepFiringFor == 5 * Millis.minute)
        #expect(loaded.rules.alerts[0].minUsers == 1000 && loaded.rules.alerts[2].minVolume?.value == 30)
        #expect(loaded.settings.kafka.alertsTopic == "ops.alerts")
        #expect(try ConfigLoader.load(text: Self.base.replacingOccurrences(of: "alerts:\n", with: ""), file: "t.yaml").settings.kafka.alertsTopic == "lifecycled.alerts")
    }

    /// `alert` is line 9; the error must point at `token` on it.
    @Test("check names the field, what was expected, and the place", arguments: [
        (#"a: {when: "share(gone)", critical: "> 0.2"}"#, "gone", "alerts.a.when: 'gone' is not a declared stage: expected one of new, at_risk"),
        (#"a: {when: "fired(nope, 1h)", critical: "> 5"}"#, "nope", "'nope' is not a trigger: expected one of churn_risk, win_back"),
        (#"a: {when: "conversion_rate(win_back, 1d)", critical: "< 0.1"}"#, "win_back", "trigger 'win_back' has no goal"),
        (#"a: {when: "fired(churn_risk, 30s)", critical: "> 5"}"#, "30s", "'30s' is not a window of at least 1m"),
        (#"a: {when: "sharee(at_risk)", critical: "> 0.2"}"#, "sharee", "unknown measure 'sharee': expected users(STAGE, ...)"),
        (#"a: {when: "share(at_risk) + share(new)", critical: "> 0.2"}"#, "+", "an alert watches one measure"),
        (#"a: {when: "share()", critical: "> 0.2"}"#, "share", "'share' needs at least one stage"),
        (#"a: {when: "lag(1h)", critical: "> 1000"}"#, "lag", "'lag' takes no arguments"),
        (#"a: {when: "share(at_risk)", critical: "0.2"}"#, #""0.2""#, #"alerts.a.critical: expected a comparison and a number in quotes, such as "> 0.25""#),
        (#"a: {when: "share(at_risk)", critical: "== 0.2"}"#, #""== 0.2""#, "one of > >= < <="),
        (#"a: {when: "share(at_risk)", warn: "> 0.3", critical: "> 0.2"}"#, #""> 0.3""#, "alerts.a.warn: '> 0.3' must be reached before critical '> 0.2', so below 0.2"),
        (#"a: {when: "events(1h)", warn: "< 10", critical: "< 50"}"#, #""< 10""#, "must be reached before critical '< 50', so above 50"),
        (#"a: {when: "share(at_risk)", warn: "< 0.1", critical: "> 0.2"}"#, #""> 0.2""#, "opposite directions"),
        (#"a: {when: "share(at_risk)", critical: "> 1.5"}"#, #""> 1.5""#, "1.5 is outside 0 to 1; 'share(at_risk)' is a fraction"),
        (#"a: {when: "events(10m)", critical: "> -1"}"#, #""> -1""#, "is a count; expected a threshold of 0 or more"),
        (#"a: {when: "share(at_risk)", critical: "> 0.2", for: 10x}"#, "10x", "alerts.a.for: '10x' is not a duration"),
        (#"a: {when: "share(at_risk)", critical: "> 0.2", keep_firing_for: -5m}"#, "-5m", "alerts.a.keep_firing_for: '-5m' is not a duration"),
        (#"a: {when: "share(at_risk)", critical: "> 0.2", min_users: 0}"#, "0}", "alerts.a.min_users: expected a positive whole number"),
        (#"a: {when: "share(at_risk)", critical: "> 0.2", min_volume: 30}"#, "30", "alerts.a.min_volume: 'share' has no volume but its users; use min_users"),
        (#"a: {when: "share(at_risk)"}"#, "a", "alerts.a: needs 'warn', 'critical' or both"),
        (#"a: {when: "share(at_risk)", critical: "> 0.2", keep_firng_for: 5m}"#, "keep_firng_for", "unknown key 'keep_firng_for' (did you mean 'keep_firing_for'?)"),
        (#"a: {critical: "> 0.2"}"#, "{", "alerts.a: missing required key 'when'"),
    ])
    func errors(alert: String, token: String, message: String) throws {
        do {
            _ = try ConfigLoader.load(text: Self.base + "  " + alert + "\n", file: "t.yaml")
            Issue.record("loaded: \(alert)")
        } catch {
            let first = try #require(error.errors.first)
            let column = try #require(alert.range(of: token)).lowerBound.utf16Offset(in: alert) + 3
            #expect(first.description.hasPrefix("t.yaml:9:\(column): "), "\(first)")
            #expect(first.message.contains(message), "\(first)")
        }
    }
}
