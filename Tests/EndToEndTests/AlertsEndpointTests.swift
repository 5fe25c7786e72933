import Foundation
import LifecycleConfig
@testable import LifecycleDaemon
import LifecycleEngine
import LifecycleHTTP
import Prometheus
import Testing

/// `/v1/alerts` and `lifecycled_alert_state` from what the coordinator posts.
@Suite("HTTP port: alerts")
struct AlertsEndpointTests {
    /// Three alerts after two samples a minute apart: one firing at critical, one pending at
    /// warn, one not evaluated.
    static func statuses() throws -> [AlertStatus] {
        let loaded = try ConfigLoader.load(text: """
            lifecycle: {stages: [new, at_risk], initial: new, transitions: [{from: new, to: at_risk, on: activity}]}
            alerts:
              at_risk_share: {when: "share(at_risk)", warn: "> 0.15", critical: "> 0.25"}
              stuck: {when: "users(new)", warn: "> 500", critical: "> 900", for: 10m}
              few: {when: "share(at_risk)", critical: "> 0.5", min_users: 1000}
            """, file: "t.yaml")
        var evaluator = AlertEvaluator(loaded.compiled.alerts)
        let sample = AlertSample(usersPerStage: [600, 212], fired: [], converted: [], events: 0)
        _ = evaluator.evaluate(sample, at: 1_795_380_000_123)
        _ = evaluator.evaluate(sample, at: 1_795_380_060_123)
        return evaluator.statuses
    }

    @Test("/v1/alerts: every alert's state, level, value, threshold, thresholds as written, since and why it is not evaluated")
    func alerts() throws {
        let board = StatusBoard()
        let statuses = try Self.statuses()
        board.publish { $0.alerts = statuses }
        let server = try StatusServer(host: "127.0.0.1", port: 0, board: board, registry: PrometheusCollectorRegistry(), clock: { 1_000_000 })
        defer { server.close() }
        let response = StatusServerTests.request(server.port, "/v1/alerts")
        #expect(response.status == 200)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any], "\(response)")
        let alerts = try #require(object["alerts"] as? [[String: Any]])
        #expect(alerts.count == 3)
        let keys: Set = ["name", "when", "state", "level", "value", "threshold", "warn", "critical", "since", "reason"]
        #expect(alerts.allSatisfy { Set($0.keys) == keys }, "\(alerts)")
        let (share, stuck, few) = (alerts[0], alerts[1], alerts[2])
        #expect(share["name"] as? String == "at_risk_share" && share["when"] as? String == "share(at_risk)")
        #expect(share["state"] as? String == "firing" && share["level"] as? String == "critical")
        // Foundation's parser may miss the last bit of a double.
        #expect(abs((share["value"] as? Double ?? 0) - 212.0 / 812) < 1e-12 && share["threshold"] as? Double == 0.25)
        #expect(share["warn"] as? String == "> 0.15" && share["critical"] as? String == "> 0.25")
        #expect(share["since"] as? Int == 1_795_380_000_123 && share["reason"] is NSNull)
        #expect(stuck["state"] as? String == "pending" && stuck["level"] as? String == "warn" && stuck["threshold"] as? Double == 500)
        #expect(few["state"] as? String == "ok" && few["level"] is NSNull && few["value"] is NSNull && few["since"] is NSNull)
        #expect(few["warn"] is NSNull && few["reason"] as? String == "below min_users (812 < 1000)")
    }

    @Test("lifecycled_alert_state: 0 ok, 1 pending, 2 firing at warn, 3 firing at critical; an alert a reload removed loses its series")
    func metric() throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = DaemonMetrics(factory: DaemonMetrics.prometheusFactory(registry: registry), triggers: [], stages: [])
        var statuses = try Self.statuses()
        metrics.setAlerts(statuses)
        var lines = MetricsExpositionTests.lines(registry)
        #expect(lines.isSuperset(of: [
            #"lifecycled_alert_state{alert="at_risk_share"} 3.0"#, #"lifecycled_alert_state{alert="stuck"} 1.0"#,
            #"lifecycled_alert_state{alert="few"} 0.0"#,
        ]), "\(lines.sorted())")
        statuses[0].level = .warn
        metrics.setAlerts(Array(statuses.prefix(1)))
        lines = MetricsExpositionTests.lines(registry)
        #expect(lines.contains(#"lifecycled_alert_state{alert="at_risk_share"} 2.0"#), "\(lines.sorted())")
        #expect(!lines.contains { $0.contains("stuck") || $0.contains("few") }, "\(lines.sorted())")
    }
}
