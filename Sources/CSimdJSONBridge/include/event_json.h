#ifndef LIFECYCLED_EVENT_JSON_H
#define LIFECYCLED_EVENT_JSON_H
/* A C view of simdjson for Swift: parse one JSON object and read a fixed set of dot paths.
 * Strings returned point into the reader's memory or into the bytes read; they stay valid
 * until the next read and while those bytes do. */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LC_JSON_MISSING = 0,
    LC_JSON_NULL = 1,
    LC_JSON_BOOL = 2,
    LC_JSON_INT = 3,
    LC_JSON_DOUBLE = 4,
    LC_JSON_STRING = 5,
    LC_JSON_OTHER = 6, /* an object or an array */
} lc_json_kind;

typedef struct {
    lc_json_kind kind;
    int64_t integer;   /* LC_JSON_INT; LC_JSON_BOOL as 0/1 */
    double number;     /* LC_JSON_DOUBLE, and LC_JSON_INT converted */
    const char *string;
    size_t length;
} lc_json_value;

typedef enum {
    LC_JSON_OK = 0,
    LC_JSON_NOT_JSON = 1,
    LC_JSON_NOT_OBJECT = 2,
} lc_json_status;

typedef struct lc_json_reader lc_json_reader;

/* `paths` are dot paths ("props.plan"); they are copied. Returns NULL if out of memory. */
lc_json_reader *lc_json_reader_new(const char *const *paths, size_t count);
void lc_json_reader_free(lc_json_reader *reader);

/* Parses `length` bytes and fills one value per path, in the order given at creation. Plain
 * JSON (ASCII strings without escapes, short numbers without exponents) is read in one pass;
 * any other document goes to simdjson, copied into an internal padded buffer. */
lc_json_status lc_json_reader_read(lc_json_reader *reader, const void *bytes, size_t length,
                                   lc_json_value *values);

/* The two halves of `lc_json_reader_read`, for tests that hold one against the other. The
 * plain reader returns 1 when it read the document, 0 when it leaves it to simdjson. */
int lc_json_reader_read_plain(lc_json_reader *reader, const void *bytes, size_t length, lc_json_value *values);
lc_json_status lc_json_reader_read_simdjson(lc_json_reader *reader, const void *bytes, size_t length,
                                            lc_json_value *values);

#ifdef __cplusplus
}
#endif
#endif
