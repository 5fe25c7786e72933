@testable import LifecycleDaemon
import LifecycleHTTP
import Prometheus
import Testing

/// The daemon's metrics as `/metrics` renders them: the registry behind the Prometheus factory.
@Suite("Metrics exposition")
struct MetricsExpositionTests {
    static func lines(_ registry: PrometheusCollectorRegistry) -> Set<String> {
        Set(registry.emitToString().split(separator: "\n").map(String.init))
    }

    @Test("event-to-trigger latency: the daemon's buckets in seconds, cumulative, with +Inf, sum and count")
    func eventToTriggerLatency() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DaemonMetrics(factory: DaemonMetrics.prometheusFactory(registry: registry), triggers: [], stages: [])
        for microseconds in [500, 1_000, 1_100, 20_000, 99_000_000] { metrics.latency.recordMicroseconds(microseconds) }
        let lines = Self.lines(registry)
        let name = "lifecycled_event_to_trigger_seconds"
        #expect(lines.contains("# TYPE \(name) histogram"))
        let expected = [("0.001", 2), ("0.002", 3), ("0.005", 3), ("0.01", 3), ("0.025", 4), ("0.05", 4), ("0.1", 4),
                        ("0.25", 4), ("0.5", 4), ("1.0", 4), ("2.5", 4), ("5.0", 4), ("10.0", 4), ("+Inf", 5)]
        for (bound, count) in expected {
            #expect(lines.contains("\(name)_bucket{le=\"\(bound)\"} \(count)"), "\(bound): \(lines.sorted())")
        }
        #expect(lines.filter { $0.hasPrefix("\(name)_bucket") }.count == expected.count)
        #expect(lines.contains("\(name)_sum 99.0226"), "\(lines.sorted())")
        #expect(lines.contains("\(name)_count 5"))
    }

    @Test("counters get what the pipeline's counters gained, once; label values as they come, triggers by arm; gauges as last published")
    func countersAndGauges() {
        let registry = PrometheusCollectorRegistry()
        let metrics = DaemonMetrics(
            factory: DaemonMetrics.prometheusFactory(registry: registry),
            triggers: [TriggerArm("churn_risk", .treatment), TriggerArm("churn_risk", .control), TriggerArm("win_back", nil)],
            stages: ["new", "engaged"])
        var lines = Self.lines(registry)
        // Known label values show from the start; checkpoint gauges only after a commit cycle.
        #expect(lines.isSuperset(of: [
            "lifecycled_triggers_fired_total{trigger=\"churn_risk\",arm=\"control\"} 0",
            "lifecycled_trigger_conversions_total{trigger=\"win_back\",arm=\"treatment\"} 0",
            "lifecycled_users{stage=\"engaged\"} 0.0", "lifecycled_ready 0.0", "lifecycled_kafka_errors_total 0",
        ]), "\(lines.sorted())")
        #expect(!lines.contains { $0.contains("checkpoint_age") })

        var counters = PipelineCounters()
        counters.eventsConsumed = 3
        counters.eventsRejected = ["not_json": 1]
        counters.triggersByArm = [TriggerArm("churn_risk", .control): 1, TriggerArm("churn_risk", .treatment): 4]
        counters.conversionsByArm = [TriggerArm("churn_risk", .control): 1]
        metrics.update(counters)
        metrics.update(counters)  // nothing gained: nothing added
        counters.eventsConsumed = 5
        counters.eventsRejected = ["not_json": 2, "bad_time": 1]
        counters.kafkaErrors = 1
        metrics.update(counters)
        metrics.set(
            usersTracked: 7, stateBytes: 4_096, usersPerStage: [("new", 3), ("engaged", 4)],
            lag: [("user-events[0]", 0), ("user-events[1]", 12)], assigned: ["user-events[0]", "user-events[1]"],
            lastCheckpoint: (at: 10_000, seconds: 0.25), now: 12_500, ready: true)
        lines = Self.lines(registry)
        #expect(lines.isSuperset(of: [
            "lifecycled_events_consumed_total 5", "lifecycled_events_invalid_total{reason=\"not_json\"} 2",
            "lifecycled_events_invalid_total{reason=\"bad_time\"} 1",
            "lifecycled_triggers_fired_total{trigger=\"churn_risk\",arm=\"control\"} 1",
            "lifecycled_triggers_fired_total{trigger=\"churn_risk\",arm=\"treatment\"} 4",
            "lifecycled_trigger_conversions_total{trigger=\"churn_risk\",arm=\"control\"} 1",
            "lifecycled_trigger_conversions_total{trigger=\"churn_risk\",arm=\"treatment\"} 0",
            "lifecycled_kafka_errors_total 1", "lifecycled_users_tracked 7.0", "lifecycled_state_bytes 4096.0", "lifecycled_users{stage=\"new\"} 3.0",
            "lifecycled_consumer_lag{partition=\"user-events[1]\"} 12.0", "lifecycled_checkpoint_duration_seconds 0.25",
            "lifecycled_checkpoint_age_seconds 2.5", "lifecycled_ready 1.0",
        ]), "\(lines.sorted())")

        // A revoked partition's lag is no longer this instance's to report.
        metrics.set(
            usersTracked: 7, stateBytes: 4_096, usersPerStage: [], lag: [("user-events[0]", 0)], assigned: ["user-events[0]"],
            lastCheckpoint: nil, now: 13_000, ready: true)
        lines = Self.lines(registry)
        #expect(lines.contains("lifecycled_consumer_lag{partition=\"user-events[0]\"} 0.0"))
        #expect(!lines.contains { $0.contains("user-events[1]") }, "\(lines.sorted())")
    }
}
