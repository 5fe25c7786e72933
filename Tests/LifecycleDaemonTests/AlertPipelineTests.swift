import Foundation
import LifecycleDaemon
import LifecycleEngine
import LifecycleKafka
import MetricsTestKit
import Testing

@Suite("Alerts in the pipeline")
struct AlertPipelineTests {
    @Test("the coordinator samples the instance's totals each second: changes go to the alerts topic keyed by alert, the board and the metric show the states")
    func alertsFromThePipeline() throws {
        let cluster = try PipelineTests.onePartitionCluster(events: PipelineTests.sample)
        try cluster.createTopic("lifecycled.alerts", partitions: 1)
        let config = try PipelineTests.config(
            cluster: cluster, group: "alerts", stateDirectory: PipelineTests.temporaryDirectory(), partitions: 1
        ) { text in
            // The playbook's own alerts (its last section) need 1,000 users; the sample has 5.
            text.components(separatedBy: "\nalerts:\n")[0] + """

                alerts:
                  tracked: {when: "users(new, activated, engaged, at_risk, dormant, reactivated)", warn: "> 0", critical: "> 3"}
                  behind: {when: "lag", warn: "> 1000000"}

                """
        }
        let metrics = TestMetrics()
        let board = StatusBoard()
        let pipeline = try PipelineCoordinator(config: config, logger: PipelineTests.logger, wallClock: { 0 }, metrics: metrics)
        var now: Int64 = 1_000_000
        let deadline = Date().addingTimeInterval(30)
        repeat {
            try pipeline.step()
            now += Millis.second  // a second of the monitor's clock each step: every publish samples
            pipeline.publish(to: board, now: now)
        } while (board.current.alerts.first?.level != .critical || board.current.alerts.last?.value == nil) && Date() < deadline
        try pipeline.stop()

        let alerts = board.current.alerts
        #expect(alerts.map(\.name) == ["tracked", "behind"])
        #expect(alerts[0].state == .firing && alerts[0].level == .critical && alerts[0].threshold == 3, "\(alerts)")
        #expect(alerts[0].since != nil && alerts[0].warn?.description == "> 0")
        #expect(alerts[1].state == .ok && alerts[1].value != nil && alerts[1].since == nil, "lag is known once the partition's end is")
        #expect(try metrics.expectGauge("lifecycled_alert_state", [("alert", "tracked")]).lastValue == 3)
        #expect(try metrics.expectGauge("lifecycled_alert_state", [("alert", "behind")]).lastValue == 0)

        let messages = try PipelineTests.read(["lifecycled.alerts"], expecting: 0, cluster: cluster)
        #expect(!messages.isEmpty && messages.allSatisfy { $0.key == "tracked" }, "\(messages)")
        let last = try #require(messages.last.flatMap { try JSONSerialization.jsonObject(with: Data($0.value.utf8)) as? [String: Any] })
        #expect(last["state"] as? String == "firing" && last["level"] as? String == "critical", "\(last)")
        #expect(last["config_version"] as? String == config.configVersion)
    }
}
