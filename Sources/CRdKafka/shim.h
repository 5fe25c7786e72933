#ifndef LIFECYCLED_CRDKAFKA_SHIM_H
#define LIFECYCLED_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* rd_kafka_producev is variadic, which Swift cannot call: these fixed-arity wrappers can.
 * The payload and key are copied (RD_KAFKA_MSG_F_COPY), so callers may reuse their buffers;
 * a NULL value is a tombstone; partition RD_KAFKA_PARTITION_UA lets the partitioner pick. */
static inline rd_kafka_resp_err_t lifecycled_produce(rd_kafka_t *rk, const char *topic,
                                                     int32_t partition,
                                                     const void *key, size_t key_len,
                                                     const void *value, size_t value_len,
                                                     void *opaque) {
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE((void *)value, value_len),
                             RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

static inline rd_kafka_resp_err_t lifecycled_produce_with_header(
    rd_kafka_t *rk, const char *topic, int32_t partition, const void *key, size_t key_len,
    const void *value, size_t value_len, const char *header_name, const void *header_value,
    size_t header_len, void *opaque) {
    return rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY(key, key_len),
                             RD_KAFKA_V_VALUE((void *)value, value_len),
                             RD_KAFKA_V_HEADER(header_name, header_value, (ssize_t)header_len),
                             RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}

/* Macro-only constants, as values Swift can import. */
static const int64_t lifecycled_offset_beginning = RD_KAFKA_OFFSET_BEGINNING;
static const int64_t lifecycled_offset_invalid = RD_KAFKA_OFFSET_INVALID;
static const int32_t lifecycled_partition_unassigned = RD_KAFKA_PARTITION_UA;
#endif
