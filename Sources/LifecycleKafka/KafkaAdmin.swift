import CRdKafka
import Logging

/// The few administrative calls the daemon makes at start, for topics it owns (the changelog):
/// how many partitions a topic has, its configuration, and creating it.
public final class KafkaAdmin {
    private let handle: OpaquePointer
    private let context: Unmanaged<HandleContext>
    private let results: OpaquePointer

    public init(properties: [String: String], logger: Logger) throws(KafkaError) {
        var settings = properties
        settings["group.id"] = nil
        // Looking a topic up must not create it (brokers may auto-create on metadata requests).
        settings["allow.auto.create.topics"] = "false"
        let conf = try KafkaProperties.make(settings)
        let retained = HandleContext(logger: logger).install(on: conf)
        // Admin requests need a client of either kind; a consumer without a group joins none,
        // and unlike a producer it never asks for a topic to be created by looking it up.
        let handle = try HandleContext.newHandle(RD_KAFKA_CONSUMER, conf: conf, context: retained, creating: "the Kafka admin client")
        self.handle = handle
        context = retained
        results = rd_kafka_queue_new(handle)
    }

    deinit {
        serveLogs()
        rd_kafka_queue_destroy(results)
        rd_kafka_destroy(handle)
        context.release()
    }

    /// The cluster's id (from its metadata), or nil if no broker answered in time or the
    /// brokers are too old to have one.
    public func clusterID(timeoutMilliseconds: Int32) -> String? {
        defer { serveLogs() }
        guard let id = rd_kafka_clusterid(handle, timeoutMilliseconds) else { return nil }
        defer { rd_kafka_mem_free(handle, id) }
        return String(cString: id)
    }

    /// The topic's partition count, or nil if the cluster does not have it.
    public func partitionCount(of topic: String, timeoutMilliseconds: Int32) throws(KafkaError) -> Int? {
        defer { serveLogs() }
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaError(kind: .setup, message: "looking up topic '\(topic)': \(String(cString: rd_kafka_err2str(rd_kafka_last_error())))")
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        try KafkaConsumer.check(rd_kafka_metadata(handle, 0, topicHandle, &metadata, timeoutMilliseconds), while: "looking up topic '\(topic)'")
        defer { rd_kafka_metadata_destroy(metadata) }
        guard let metadata, metadata.pointee.topic_cnt > 0 else { return nil }
        let entry = metadata.pointee.topics[0]
        if entry.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
        try KafkaConsumer.check(entry.err, while: "looking up topic '\(topic)'")
        return Int(entry.partition_cnt)
    }

    /// The topic's configuration as the brokers report it (`cleanup.policy`, ...).
    public func configuration(of topic: String, timeoutMilliseconds: Int32) throws(KafkaError) -> [String: String] {
        let resource = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic)!
        defer { rd_kafka_ConfigResource_destroy(resource) }
        var resources: [OpaquePointer?] = [resource]
        let event = try request(RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeoutMilliseconds, while: "reading the configuration of '\(topic)'") { options in
            rd_kafka_DescribeConfigs(handle, &resources, 1, options, results)
        }
        defer { rd_kafka_event_destroy(event) }
        var count = 0
        guard let result = rd_kafka_event_DescribeConfigs_result(event),
              let described = rd_kafka_DescribeConfigs_result_resources(result, &count), count == 1, let first = described[0]
        else { return [:] }
        try KafkaConsumer.check(rd_kafka_ConfigResource_error(first), while: "reading the configuration of '\(topic)'")
        var entries = 0
        guard let configs = rd_kafka_ConfigResource_configs(first, &entries) else { return [:] }
        var values: [String: String] = [:]
        for index in 0..<entries {
            guard let entry = configs[index], let name = rd_kafka_ConfigEntry_name(entry) else { continue }
            values[String(cString: name)] = rd_kafka_ConfigEntry_value(entry).map { String(cString: $0) } ?? ""
        }
        return values
    }

    /// Creates a topic; -1 replicas means the brokers' default.
    public func createTopic(
        _ topic: String, partitions: Int, replicas: Int = -1, configuration: [String: String], timeoutMilliseconds: Int32
    ) throws(KafkaError) {
        var errorText = ErrorText()
        guard let newTopic = rd_kafka_NewTopic_new(topic, Int32(partitions), Int32(replicas), &errorText.storage, errorText.storage.count) else {
            throw KafkaError(kind: .setup, message: "creating topic '\(topic)': \(errorText.text)")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        for (name, value) in configuration.sorted(by: { $0.key < $1.key }) {
            try KafkaConsumer.check(rd_kafka_NewTopic_set_config(newTopic, name, value), while: "creating topic '\(topic)' with \(name)=\(value)")
        }
        var topics: [OpaquePointer?] = [newTopic]
        let event = try request(RD_KAFKA_ADMIN_OP_CREATETOPICS, timeoutMilliseconds, while: "creating topic '\(topic)'") { options in
            rd_kafka_CreateTopics(handle, &topics, 1, options, results)
        }
        defer { rd_kafka_event_destroy(event) }
        var count = 0
        guard let result = rd_kafka_event_CreateTopics_result(event),
              let created = rd_kafka_CreateTopics_result_topics(result, &count), count == 1, let first = created[0]
        else { return }
        let error = rd_kafka_topic_result_error(first)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let detail = rd_kafka_topic_result_error_string(first).map { String(cString: $0) } ?? ""
            throw KafkaError(code: error.rawValue, message: "creating topic '\(topic)': \(String(cString: rd_kafka_err2name(error))): \(detail)")
        }
    }

    /// Sends one admin request and waits for its result event (which the caller destroys).
    private func request(
        _ operation: rd_kafka_admin_op_t, _ timeoutMilliseconds: Int32, while action: String, _ send: (OpaquePointer) -> Void
    ) throws(KafkaError) -> OpaquePointer {
        let options = rd_kafka_AdminOptions_new(handle, operation)!
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errorText = ErrorText()
        let timeoutSet = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMilliseconds, &errorText.storage, errorText.storage.count)
        guard timeoutSet == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(timeoutSet, while: "\(action): \(errorText.text)") }
        send(options)
        let answer = rd_kafka_queue_poll(results, timeoutMilliseconds + 1_000)
        serveLogs()
        guard let event = answer else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, message: "\(action): no answer within \(timeoutMilliseconds / 1000) s")
        }
        let error = rd_kafka_event_error(event)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let detail = rd_kafka_event_error_string(event).map { String(cString: $0) } ?? ""
            rd_kafka_event_destroy(event)
            throw KafkaError(code: error.rawValue, message: "\(action): \(String(cString: rd_kafka_err2name(error))): \(detail)")
        }
        return event
    }

    /// Logs (and errors) queued while this thread waited on the request's own queue.
    private func serveLogs() { rd_kafka_poll(handle, 0) }
}
