import CRdKafka
import Logging

/// What librdkafka's C callbacks need to reach Swift: a logger and, per handle kind, a
/// handler. One context per handle, passed as the handle's opaque pointer and kept alive
/// (retained) until the handle is destroyed.
final class HandleContext {
    let logger: Logger
    /// Set when librdkafka reports every broker down; cleared by a successful probe.
    var allBrokersDown = false
    /// Errors librdkafka reported through the error callback since the owner last took them.
    private var errorsReported = 0
    var onDelivery: ((Delivery) -> Void)?
    var onRebalance: ((_ handle: OpaquePointer, _ error: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void)?

    init(logger: Logger) { self.logger = logger }

    static func from(_ handle: OpaquePointer?) -> HandleContext? {
        guard let handle, let opaque = rd_kafka_opaque(handle) else { return nil }
        return Unmanaged<HandleContext>.fromOpaque(opaque).takeUnretainedValue()
    }

    /// Installs the context and the log callback on a configuration. `newHandle` queues the
    /// logs (`log.queue`) for whoever polls the handle's main queue, the owner: the callback
    /// must not call librdkafka (it reads the handle's opaque pointer) from librdkafka's own
    /// threads, where it would run otherwise.
    func install(on conf: OpaquePointer) -> Unmanaged<HandleContext> {
        let retained = Unmanaged.passRetained(self)
        rd_kafka_conf_set_opaque(conf, retained.toOpaque())
        rd_kafka_conf_set_error_cb(conf) { handle, error, reason, _ in
            guard let context = HandleContext.from(handle) else { return }
            let code = rd_kafka_resp_err_t(rawValue: error)
            if code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN { context.allBrokersDown = true }
            context.errorsReported += 1
            context.logger.warning("kafka: \(String(cString: rd_kafka_err2name(code))): \(reason.map { String(cString: $0) } ?? "")")
        }
        rd_kafka_conf_set_log_cb(conf) { handle, level, facility, message in
            guard let context = HandleContext.from(handle) else { return }
            let text = "\(facility.map { String(cString: $0) } ?? "?"): \(message.map { String(cString: $0) } ?? "")"
            context.logger.log(level: HandleContext.logLevel(syslog: level), "\(text)", metadata: ["source": "librdkafka"])
        }
        return retained
    }

    /// Creates a client of `kind` from `conf`, which it then owns, with `retained` (this
    /// context, installed) as its opaque pointer; on failure both are released, and the error
    /// names `what` was being created. `pollsConsumerQueue`: the owner polls the consumer
    /// queue only, so the main queue (callbacks, logs) is forwarded to it.
    static func newHandle(
        _ kind: rd_kafka_type_t, conf: OpaquePointer, context retained: Unmanaged<HandleContext>, creating what: String,
        pollsConsumerQueue: Bool = false
    ) throws(KafkaError) -> OpaquePointer {
        var errorText = ErrorText()
        guard rd_kafka_conf_set(conf, "log.queue", "true", &errorText.storage, errorText.storage.count) == RD_KAFKA_CONF_OK,
            let handle = rd_kafka_new(kind, conf, &errorText.storage, errorText.storage.count)
        else {
            rd_kafka_conf_destroy(conf)
            retained.release()
            throw KafkaError(kind: .setup, message: "creating \(what): \(errorText.text)")
        }
        // Logs to the main queue (nil): what the owner polls, or forwards to what it polls.
        var result = rd_kafka_set_log_queue(handle, nil)
        if result == RD_KAFKA_RESP_ERR_NO_ERROR && pollsConsumerQueue { result = rd_kafka_poll_set_consumer(handle) }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(handle)
            retained.release()
            throw KafkaError(result, while: "creating \(what)")
        }
        return handle
    }

    /// Counts an error librdkafka did not report as one (see its callers).
    func noteError() { errorsReported += 1 }

    /// The errors reported since the last call (the callback runs on the owner's polling thread).
    func takeErrorsReported() -> Int {
        defer { errorsReported = 0 }
        return errorsReported
    }

    /// librdkafka logs with syslog levels.
    static func logLevel(syslog level: Int32) -> Logger.Level {
        switch level {
        case ...3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }
}
