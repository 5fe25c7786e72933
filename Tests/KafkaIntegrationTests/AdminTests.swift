import LifecycleKafka
import Logging
import Testing

/// What of topic administration the mock cluster can show: it answers metadata (and creates a
/// topic it is asked about, as its Metadata v2 has no way to say not to), but has no
/// controller, so creating topics and reading their configuration time out.
@Suite("Topic administration on the mock cluster", .serialized)
struct AdminTests {
    @Test("partition counts come from metadata; requests that need a controller fail with a timeout naming what was asked")
    func onTheMock() throws {
        let cluster = try MockCluster()
        try cluster.createTopic("changelog", partitions: 12)
        let admin = try KafkaAdmin(properties: ["bootstrap.servers": cluster.bootstrapServers], logger: Logger(label: "test.admin"))
        #expect(try admin.partitionCount(of: "changelog", timeoutMilliseconds: 5_000) == 12)
        let error = #expect(throws: KafkaError.self) {
            try admin.configuration(of: "changelog", timeoutMilliseconds: 500)
        }
        #expect(error?.message.contains("reading the configuration of 'changelog'") == true, "\(String(describing: error))")
    }
}
