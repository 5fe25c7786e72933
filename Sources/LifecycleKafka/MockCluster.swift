import CRdKafka
import Logging

/// librdkafka's in-process mock Kafka cluster: the real protocol over loopback TCP, with
/// consumer groups and offset commits. For tests and `demo`, never for production.
public final class MockCluster {
    private let owner: OpaquePointer
    private let cluster: OpaquePointer
    public let bootstrapServers: String
    private let brokers: Int32

    public init(brokers: Int32 = 1) throws(KafkaError) {
        // The mock's sockets take their options from this handle. Without TCP_NODELAY (which
        // Kafka brokers set), a response written in pieces waited for the client's delayed
        // ACK: acknowledgements of ~40 ms (BENCHMARKS.md).
        let conf = try KafkaProperties.make(["log_level": "3", "socket.nagle.disable": "true"])
        var errorText = ErrorText()
        // The cluster needs a handle to live in; a producer that never produces is enough.
        guard let owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errorText.storage, errorText.storage.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(kind: .setup, message: "creating the mock cluster's handle: \(errorText.text)")
        }
        guard let cluster = rd_kafka_mock_cluster_new(owner, brokers) else {
            rd_kafka_destroy(owner)
            throw KafkaError(kind: .setup, message: "creating the mock cluster")
        }
        self.owner = owner
        self.cluster = cluster
        self.brokers = brokers
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(owner)
    }

    /// Takes a broker down or brings it back (ids start at 1), to test outages.
    public func setBroker(_ id: Int32, up: Bool) throws(KafkaError) {
        let result = up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: "setting mock broker \(id) \(up ? "up" : "down")") }
    }

    /// Delays every broker's responses by `milliseconds`, to test what waits for Kafka.
    public func setRoundTrip(milliseconds: Int32) throws(KafkaError) {
        for id in 1...brokers {
            let result = rd_kafka_mock_broker_set_rtt(cluster, id, milliseconds)
            guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, while: "setting mock broker \(id)'s round trip") }
        }
    }

    /// Makes the next `errorCodes.count` requests of Kafka API `apiKey` (8 OffsetCommit, 12
    /// Heartbeat, ...) fail with these Kafka error codes, one each, to test how clients take them.
    public func failNextRequests(apiKey: Int16, with errorCodes: [Int32]) {
        let errors = errorCodes.map { rd_kafka_resp_err_t(rawValue: $0) }
        rd_kafka_mock_push_request_errors_array(cluster, apiKey, errors.count, errors)
    }

    /// Creates a topic; one that exists already is left as it is. (The mock also creates a
    /// topic, with 4 partitions, when a client asks for its metadata.)
    public func createTopic(_ name: String, partitions: Int32) throws(KafkaError) {
        let result = rd_kafka_mock_topic_create(cluster, name, partitions, 1)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR || result == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS else {
            throw KafkaError(result, while: "creating mock topic '\(name)'")
        }
    }
}
