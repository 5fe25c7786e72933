import CRdKafka

/// An error of the Kafka adapter: what kind, and a message that says what was being done.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for callers that act on it (retry, stop, tell the operator).
    public enum Kind: Sendable, Equatable {
        /// librdkafka returned this error code (`rd_kafka_resp_err_t`).
        case librdkafka(Int32)
        /// librdkafka refused a configuration property.
        case configuration
        /// librdkafka could not create a client, mock cluster or queue.
        case setup
        /// A system call failed with this `errno`.
        case system(Int32)
        /// Kafka's topics are not as the daemon needs them (partition counts, cleanup policy).
        case topicMismatch
        /// Kafka did not acknowledge what was produced in time.
        case unacknowledged
    }

    public var kind: Kind
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// An error librdkafka returned as `code`.
    public init(code: Int32, message: String) {
        self.init(kind: .librdkafka(code), message: message)
    }

    init(_ code: rd_kafka_resp_err_t, while action: String) {
        kind = .librdkafka(code.rawValue)
        message = "\(action): \(String(cString: rd_kafka_err2name(code))): \(String(cString: rd_kafka_err2str(code)))"
    }

    /// librdkafka's error code, if the error is librdkafka's.
    public var code: Int32? {
        if case .librdkafka(let code) = kind { return code }
        return nil
    }

    public var description: String { message }

    /// librdkafka found a partition's fetch offset outside the partition's range and
    /// `auto.offset.reset` is `error`: the message names the partition and the offset.
    public var isOffsetOutOfRange: Bool { code == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET.rawValue }
}

/// The buffer librdkafka writes an error message into.
struct ErrorText {
    var storage = [CChar](repeating: 0, count: 512)
    var text: String { String(decoding: storage.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
}
