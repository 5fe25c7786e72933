import CRdKafka

/// librdkafka configuration from plain properties (`bootstrap.servers`, SASL/TLS, ...).
enum KafkaProperties {
    /// A new `rd_kafka_conf_t`; the caller owns it until `rd_kafka_new` takes it.
    /// Errors name the property, as the operator wrote it in the config.
    static func make(_ properties: [String: String]) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(kind: .setup, message: "rd_kafka_conf_new failed")
        }
        var errorText = ErrorText()
        // Sorted, so a config with several bad properties always reports the same one.
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, name, value, &errorText.storage, errorText.storage.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(
                    kind: .configuration, message: "kafka property '\(name)' = '\(value)': \(errorText.text)")
            }
        }
        return conf
    }
}
