import CRdKafka

/// A librdkafka error with its symbolic name and a message that says what was being done.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    public var code: Int32
    public var message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    init(_ code: rd_kafka_resp_err_t, while action: String) {
        self.code = code.rawValue
        message = "\(action): \(String(cString: rd_kafka_err2name(code))): \(String(cString: rd_kafka_err2str(code)))"
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
