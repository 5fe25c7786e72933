import LifecycleEngine
import Testing

/// Alert semantics on a fake clock: every sample carries the time it is taken at.
@Suite("Alert evaluation")
struct AlertEvaluatorTests {
    static let t0 = Fixture.t0
    static let minute = Millis.minute

    /// Two stages and a trigger with a goal, so every measure has something to read.
    static func evaluator(_ alerts: AlertRule...) throws -> AlertEvaluator {
        let rules = try CompiledRules(Rules(
            lifecycle: LifecycleRule(
                stages: Fixture.stages("new", "at_risk"), initial: Located("new"), transitions: [Fixture.transition(["new"], "at_risk")]),
            triggers: [TriggerRule(name: "nudge", fire: .onEnter(Located("at_risk")), goal: GoalRule(event: .any, within: Millis.day))],
            alerts: alerts))
        return AlertEvaluator(rules.alerts)
    }

    static func alert(
        _ when: String, warn: String? = nil, critical: String? = nil, for holdFor: Int64 = 0, keep: Int64 = 0,
        minUsers: Int = 0, minVolume: Int? = nil
    ) -> AlertRule {
        AlertRule(
            name: "a", when: Located(when), warn: warn.map { Located(AlertThreshold.parse($0)!) },
            critical: critical.map { Located(AlertThreshold.parse($0)!) }, holdFor: holdFor, keepFiringFor: keep,
            minUsers: minUsers, minVolume: minVolume.map { Located($0) })
    }

    /// 100 users, `atRisk` of them at risk.
    static func users(atRisk: Int, of total: Int = 100) -> AlertSample {
        AlertSample(usersPerStage: [total - atRisk, atRisk], fired: [0], converted: [0], events: 0)
    }

    /// Feeds `samples` one a minute from `t0`; returns the changes.
    static func run(_ evaluator: inout AlertEvaluator, _ samples: [AlertSample]) -> [AlertChange] {
        samples.enumerated().flatMap { minute, sample in evaluator.evaluate(sample, at: t0 + Int64(minute) * Self.minute) }
    }

    /// Changes as "minute: state level".
    static func describe(_ changes: [AlertChange]) -> [String] {
        changes.map { "\(($0.at - t0) / Self.minute): \($0.state.rawValue)" + ($0.level.map { " \($0.rawValue)" } ?? "") }
    }

    @Test("for: a level fires only once it has held that long; a pending alert that stops holding goes back to ok and starts over")
    func holdFor() throws {
        var evaluator = try Self.evaluator(Self.alert("share(at_risk)", critical: "> 0.25", for: 10 * Self.minute))
        let high = Self.users(atRisk: 30), low = Self.users(atRisk: 10)
        // Holds for 5 minutes, stops, then holds from minute 7 on: fires 10 minutes after that.
        let samples = Array(repeating: high, count: 5) + [low, low] + Array(repeating: high, count: 12)
        #expect(Self.describe(Self.run(&evaluator, samples)) == ["0: pending critical", "5: ok", "7: pending critical", "17: firing critical"])
        let status = try #require(evaluator.statuses.first)
        #expect(status.state == .firing && status.level == .critical)
        #expect(status.value == 0.3 && status.threshold == 0.25)
        #expect(status.since == Self.t0 + 7 * Self.minute)  // the episode began when it started holding
    }

    @Test("keep_firing_for: a firing alert rides out a dip shorter than it, and resolves after one as long")
    func keepFiringFor() throws {
        var evaluator = try Self.evaluator(Self.alert("share(at_risk)", critical: "> 0.25", keep: 5 * Self.minute))
        let high = Self.users(atRisk: 30), low = Self.users(atRisk: 10)
        // Fires at once (no `for`); a 4-minute dip; then low for good.
        let samples = [high, high] + Array(repeating: low, count: 4) + [high] + Array(repeating: low, count: 7)
        let changes = Self.run(&evaluator, samples)
        #expect(Self.describe(changes) == ["0: firing critical", "12: resolved"])
        let resolved = try #require(changes.last)
        #expect(resolved.state == .resolved && resolved.level == nil && resolved.threshold == nil)
        #expect(resolved.since == Self.t0 && resolved.value == 0.1)
        #expect(evaluator.statuses.first?.state == .ok && evaluator.statuses.first?.since == nil)
    }

    @Test("resolution: without keep_firing_for an alert resolves at the first sample where no level holds")
    func resolution() throws {
        var evaluator = try Self.evaluator(Self.alert("users(at_risk)", warn: "> 20", for: 2 * Self.minute))
        let samples = [25, 25, 25, 25, 19, 25].map { Self.users(atRisk: $0) }
        #expect(Self.describe(Self.run(&evaluator, samples)) == ["0: pending warn", "2: firing warn", "4: resolved", "5: pending warn"])
    }

    @Test("warn and critical: warn fires first, critical escalates after holding `for` itself, and de-escalates after keep_firing_for")
    func warnAndCritical() throws {
        var evaluator = try Self.evaluator(Self.alert(
            "share(at_risk)", warn: "> 0.15", critical: "> 0.25", for: 2 * Self.minute, keep: 2 * Self.minute))
        let shares = [20, 20, 20, 30, 30, 30, 20, 20, 20, 10, 10, 10]
        #expect(Self.describe(Self.run(&evaluator, shares.map { Self.users(atRisk: $0) })) == [
            "0: pending warn", "2: firing warn",        // warn held 2 minutes
            "5: firing critical",                       // critical held from 3 to 5
            "8: firing warn",                           // critical not held from 6 to 8
            "11: resolved",                             // warn not held from 9 to 11
        ])
    }

    @Test("warn and critical below: a falling measure warns first at the higher threshold")
    func fallingThresholds() throws {
        var evaluator = try Self.evaluator(Self.alert("events(10m)", warn: "< 100", critical: "< 10"))
        var changes: [AlertChange] = []
        // 200 events a minute, then 5 a minute from minute 20, then none from minute 30.
        var events = 0
        for minute in 0...40 {
            events += minute < 20 ? 200 : minute < 30 ? 5 : 0
            changes += evaluator.evaluate(
                AlertSample(usersPerStage: [1, 0], fired: [0], converted: [0], events: events), at: Self.t0 + Int64(minute) * Self.minute)
        }
        #expect(changes.map { "\($0.state.rawValue) \($0.level?.rawValue ?? "")" } == ["firing warn", "firing critical"])
        // Minute 29: the window holds minutes 20-29 (10 × 5); minute 38: only minute 29 (5).
        #expect(changes.map(\.value) == [50, 5] && changes.map(\.at) == [Self.t0 + 29 * Self.minute, Self.t0 + 38 * Self.minute])
    }

    @Test("minimum volume: below min_users nothing holds — a pending alert goes back to ok, a firing one resolves after keep_firing_for")
    func minimumUsers() throws {
        var evaluator = try Self.evaluator(Self.alert(
            "share(at_risk)", critical: "> 0.25", for: 2 * Self.minute, keep: 3 * Self.minute, minUsers: 50))
        let high = Self.users(atRisk: 30), few = Self.users(atRisk: 12, of: 40)  // 30 % of 40: high, but too few users
        let samples = [high, few, high, high, high] + Array(repeating: few, count: 4)
        #expect(Self.describe(Self.run(&evaluator, samples)) == ["0: pending critical", "1: ok", "2: pending critical", "4: firing critical", "8: resolved"])
        let status = try #require(evaluator.statuses.first)
        #expect(status.value == nil && status.reason == "below min_users (40 < 50)")
    }

    @Test("minimum volume: a conversion rate is not evaluated on fewer firings in its window than min_volume")
    func minimumVolume() throws {
        var evaluator = try Self.evaluator(Self.alert("conversion_rate(nudge, 10m)", critical: "< 0.1", minVolume: 20))
        func sample(fired: Int, converted: Int) -> AlertSample {
            AlertSample(usersPerStage: [100, 0], fired: [fired], converted: [converted], events: 0)
        }
        #expect(evaluator.evaluate(sample(fired: 0, converted: 0), at: Self.t0).isEmpty)
        // 10 firings, none converted, in the window: a rate of 0, but too few to judge.
        #expect(evaluator.evaluate(sample(fired: 10, converted: 0), at: Self.t0 + 10 * Self.minute).isEmpty)
        #expect(evaluator.statuses[0].reason == "below min_volume (10 < 20 firings in 10m)")
        let changes = evaluator.evaluate(sample(fired: 40, converted: 2), at: Self.t0 + 20 * Self.minute)
        #expect(changes.map(\.state) == [.firing] && changes.first?.value == 2.0 / 30)
        #expect(changes.first?.threshold == 0.1 && changes.first?.reason == nil)
    }

    @Test("windows: a windowed measure waits until its window is covered, then counts only the window's growth")
    func windows() throws {
        var evaluator = try Self.evaluator(Self.alert("fired(nudge, 10m)", warn: "> 50"))
        // 1,000 fired before the first sample, none for 10 minutes, then 10 a minute.
        var changes: [(minute: Int, state: AlertChange.Kind)] = []
        for minute in 0...20 {
            let fired = 1_000 + max(0, minute - 10) * 10
            let sample = AlertSample(usersPerStage: [1, 0], fired: [fired], converted: [0], events: 0)
            changes += evaluator.evaluate(sample, at: Self.t0 + Int64(minute) * Self.minute).map { (minute, $0.state) }
            if minute == 4 {
                #expect(evaluator.statuses[0].value == nil && evaluator.statuses[0].reason == "not enough history for 10m yet (4m)")
            }
        }
        // The window's growth (60 at minute 16), never the total.
        #expect(changes.map(\.minute) == [16] && changes.map(\.state) == [.firing])
        #expect(evaluator.statuses[0].value == 100)
    }

    @Test("windows: the base sample is at most window/60 older than the window, whatever the sampling rate")
    func windowErrorBound() throws {
        var evaluator = try Self.evaluator(Self.alert("events(1h)", warn: "> 0"))
        // One event a second for two hours, sampled every second: the window's count is 3600
        // plus at most a minute (1h/60) of extra history.
        for second in 0...7_200 {
            _ = evaluator.evaluate(
                AlertSample(usersPerStage: [1, 0], fired: [0], converted: [0], events: second), at: Self.t0 + Int64(second) * Millis.second)
            if second >= 3_600, let value = evaluator.statuses[0].value {
                #expect(value >= 3_600 && value <= 3_660, "at \(second) s: \(value)")
            }
        }
    }

    @Test("lag: unknown lag is not evaluated, with the reason")
    func lagUnknown() throws {
        var evaluator = try Self.evaluator(Self.alert("lag", critical: "> 1000"))
        #expect(evaluator.evaluate(Self.users(atRisk: 0), at: Self.t0).isEmpty)
        #expect(evaluator.statuses[0].reason == "consumer lag unknown")
        #expect(evaluator.lagAlerts == ["a"])
        var sample = Self.users(atRisk: 0)
        sample.lag = 5_000
        #expect(evaluator.evaluate(sample, at: Self.t0 + 1).map(\.value) == [5_000])
    }

    @Test("a clock stepping back is ignored; a reload keeps the state of alerts it did not change")
    func clockAndReload() throws {
        let rule = Self.alert("share(at_risk)", critical: "> 0.25", for: 10 * Self.minute)
        var evaluator = try Self.evaluator(rule)
        _ = evaluator.evaluate(Self.users(atRisk: 30), at: Self.t0)
        #expect(evaluator.evaluate(Self.users(atRisk: 0), at: Self.t0 - 1).isEmpty)
        #expect(evaluator.statuses[0].state == .pending)
        var same = AlertEvaluator(evaluator.alerts, continuing: evaluator)
        #expect(same.evaluate(Self.users(atRisk: 30), at: Self.t0 + 10 * Self.minute).map(\.state) == [.firing])
        var changed = AlertEvaluator(try Self.evaluator(Self.alert("share(at_risk)", critical: "> 0.2", for: 10 * Self.minute)).alerts, continuing: evaluator)
        #expect(changed.evaluate(Self.users(atRisk: 30), at: Self.t0 + 10 * Self.minute).map(\.state) == [.pending])
    }

    @Test("no value: a share of no users, a rate without firings, each with its reason")
    func noValue() throws {
        var share = try Self.evaluator(Self.alert("share(at_risk)", critical: "> 0.25"))
        #expect(share.evaluate(Self.users(atRisk: 0, of: 0), at: Self.t0).isEmpty)
        #expect(share.statuses[0].value == nil && share.statuses[0].reason == "no users")
        var rate = try Self.evaluator(Self.alert("conversion_rate(nudge, 10m)", critical: "< 0.1"))
        for minute in [0, 10] { _ = rate.evaluate(Self.users(atRisk: 0), at: Self.t0 + Int64(minute) * Self.minute) }
        #expect(rate.statuses[0].value == nil && rate.statuses[0].reason == "no firings in 10m")
    }

    @Test("a sample refilled in place between evaluations (as replay does) leaves the samples a history kept as they were")
    func sampleReusedInPlace() throws {
        var reused = try Self.evaluator(Self.alert("fired(nudge, 10m)", warn: "> 50"))
        var fresh = reused
        var sample = AlertSample(usersPerStage: [1, 0], fired: [0], converted: [0], events: 0)
        for minute in 0...20 {
            let at = Self.t0 + Int64(minute) * Self.minute
            sample.fired[0] = minute * 10
            let changes = reused.evaluate(sample, at: at)
            #expect(changes == fresh.evaluate(AlertSample(usersPerStage: [1, 0], fired: [minute * 10], converted: [0], events: 0), at: at))
            #expect(reused.statuses == fresh.statuses)
        }
        // The window's base, kept ten minutes ago, still says 100 fired.
        #expect(reused.statuses[0].value == 100)
    }
}
