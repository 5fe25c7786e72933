import CRdKafka
import Testing

/// The system-library target links and librdkafka works: the ground the Kafka adapter stands on.
@Suite("librdkafka system library")
struct LibrdkafkaLinkTests {
    @Test("the linked librdkafka is a 2.x release")
    func version() {
        let version = String(cString: rd_kafka_version_str())
        #expect(version.hasPrefix("2."), "librdkafka \(version)")
        #expect(rd_kafka_version() >= 0x0200_0000)
    }

    @Test("a producer handle starts a mock cluster and is destroyed cleanly")
    func mockCluster() throws {
        let config = try #require(rd_kafka_conf_new())
        var error = [CChar](repeating: 0, count: 256)
        func text() -> String { String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        let set = rd_kafka_conf_set(config, "test.mock.num.brokers", "1", &error, error.count)
        #expect(set == RD_KAFKA_CONF_OK, "\(text())")
        // The handle takes ownership of `config` on success.
        let handle = try #require(rd_kafka_new(RD_KAFKA_PRODUCER, config, &error, error.count), "\(text())")
        defer { rd_kafka_destroy(handle) }
        let cluster = try #require(rd_kafka_handle_mock_cluster(handle))
        let brokers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        #expect(brokers.contains(":"), "bootstrap servers '\(brokers)'")
    }
}
