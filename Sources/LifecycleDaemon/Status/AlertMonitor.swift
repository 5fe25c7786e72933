import LifecycleCodec
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka
import Logging

/// The rules' alerts in `run`: evaluated once a second of wall-clock time on the coordinator's
/// thread, from the totals it already adds up for the status board (`publish`), so the
/// workers do nothing for them. Each change is produced to the alerts topic (key: the alert's
/// name) and logged, as JSON; the states go to the board (`/v1/alerts`) and the metrics.
final class AlertMonitor {
    static let sampleInterval = Millis.second
    /// How long `flush` waits on stop for the last changes to be acknowledged.
    static let flushTimeoutMilliseconds: Int32 = 5_000

    private var evaluator: AlertEvaluator
    private var rules: CompiledRules
    private var configVersion: String
    private let topic: String
    private let producerProperties: [String: String]
    /// Made when the first change is to be sent: most samples change nothing.
    private var producer: KafkaProducer?
    private let logger: Logger
    private let encoder = AlertEncoder()
    private var lastSample = Int64.min
    /// Deliveries Kafka refused and errors the producer reported, since the last `takeErrors`.
    private var errors = 0

    init(config: LoadedConfig, producerProperties: [String: String], logger: Logger) {
        rules = config.compiled
        evaluator = AlertEvaluator(config.compiled.alerts)
        configVersion = config.configVersion
        topic = config.settings.kafka.alertsTopic
        self.producerProperties = producerProperties
        self.logger = logger
    }

    var statuses: [AlertStatus] { evaluator.statuses }

    /// Evaluates the alerts on the instance's totals if a second has passed since the last
    /// sample. `lag`: each assigned partition's lag, where its end is known.
    func sample(counters: PipelineCounters, usersPerStage: [Int], lag: [Int64], now: Int64) {
        guard !evaluator.isEmpty, lastSample == .min || now - lastSample >= Self.sampleInterval else { return }
        lastSample = now
        var fired = [Int](repeating: 0, count: rules.triggerNames.count), converted = fired
        for (index, name) in rules.triggerNames.enumerated() {
            for arm in Arm.allCases {
                fired[index] += counters.triggersByArm[TriggerArm(name, arm), default: 0]
                converted[index] += counters.conversionsByArm[TriggerArm(name, arm), default: 0]
            }
        }
        let sample = AlertSample(
            usersPerStage: usersPerStage, fired: fired, converted: converted, events: counters.eventsConsumed, lag: lag.max())
        for change in evaluator.evaluate(sample, at: now) { send(change) }
    }

    /// New rules (a reload): the alerts' history and states carry over when the samples mean
    /// the same (same stages and triggers in the same order), for the alerts not changed.
    func rulesChanged(_ config: LoadedConfig) {
        let sameSamples = config.compiled.stageNames == rules.stageNames && config.compiled.triggerNames == rules.triggerNames
        evaluator = AlertEvaluator(config.compiled.alerts, continuing: sameSamples ? evaluator : nil)
        rules = config.compiled
        configVersion = config.configVersion
    }

    /// Serves the producer's delivery reports (on the coordinator's thread, each step).
    func serveDeliveries() {
        guard let producer else { return }
        producer.poll()
        errors += producer.takeErrorsReported()
    }

    func takeErrors() -> Int {
        defer { errors = 0 }
        return errors
    }

    /// Waits a little for the last changes to reach Kafka (on stop).
    func flush() {
        do {
            try producer?.flush(timeoutMilliseconds: Self.flushTimeoutMilliseconds)
        } catch {
            errors += 1
            logger.warning("alert changes not all acknowledged before stopping: \(error)")
        }
    }

    private func send(_ change: AlertChange) {
        var json: [UInt8] = []
        encoder.encode(change, configVersion: configVersion, into: &json)
        let text = String(decoding: json, as: UTF8.self)
        logger.log(level: change.state == .firing ? .warning : .notice, "alert \(text)")
        do {
            if producer == nil {
                producer = try KafkaProducer(properties: producerProperties, logger: logger) { [weak self] delivery in
                    guard let self, let error = delivery.error else { return }
                    errors += 1
                    logger.error("alert change not delivered to '\(topic)': \(error)")
                }
            }
            try producer?.produce(topic: topic, key: Array(change.alert.utf8), value: json, ticket: 0)
        } catch {
            errors += 1
            logger.error("alert change not sent to '\(topic)': \(error)")
        }
    }
}
