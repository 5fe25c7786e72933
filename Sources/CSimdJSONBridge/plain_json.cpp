// A one-pass reader for plain JSON, the shape nearly every event has: strings of ASCII
// without escapes, numbers without exponents and of at most 18 digits, nesting at most 32
// deep. For events of about 85 bytes, one scalar pass is faster than simdjson's two stages
// and the walk over its tree (`BENCHMARKS.md`, "Plain JSON in one pass, simdjson for the rest").
//
// It checks the whole grammar, so a document it reads is valid JSON, and it yields what
// simdjson's DOM would: the same kinds, the same numbers (exactly: see `number`), strings
// with the same bytes. Whatever it does not read (an escape, a byte outside ASCII, an
// exponent, a long number, -0, deep nesting, and every malformed document) it leaves to
// simdjson, which then decides, rejection reasons included.
#include "key_tree.h"

#include <cstdint>
#include <cstring>

namespace {

constexpr int max_depth = 32;

// 10^0 ... 10^18, each exact as a double.
constexpr double powers_of_ten[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
};

inline bool is_digit(unsigned char c) { return unsigned(c - '0') < 10u; }

// True for the bytes that end a plain string: the quote, and those the plain reader leaves
// to simdjson (an escape, control bytes, bytes outside ASCII).
inline bool ends_plain_string(unsigned char c) { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80; }

// Eight bytes at once: the high bit of the first byte that ends a plain string is set, and
// no bit below it (bits above it may be set by borrows; only the lowest is used).
inline uint64_t plain_string_ends(uint64_t bytes) {
    constexpr uint64_t ones = 0x0101010101010101, highs = 0x8080808080808080;
    uint64_t quote = bytes ^ (ones * '"'), backslash = bytes ^ (ones * '\\');
    return (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | (bytes - ones * 0x20) | bytes) & highs;
}

// Each function reads from `p` and returns where it stopped, or null to leave the document
// to simdjson. The position is passed, not kept in the reader: stores into the values made
// the compiler write a member position back to memory at every byte.
struct plain_reader {
    const unsigned char *end;
    lc_json_value *values;
    int depth = 0;

    const unsigned char *skip_space(const unsigned char *p) const {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
        return p;
    }

    // At a '"': the bytes up to the closing quote.
    const unsigned char *string(const unsigned char *p, const unsigned char *&text, size_t &length) const {
        const unsigned char *start = ++p;
        if constexpr (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__) {
            while (end - p >= 8) {
                uint64_t bytes;
                std::memcpy(&bytes, p, 8);
                uint64_t ends = plain_string_ends(bytes);
                if (ends != 0) {
                    p += __builtin_ctzll(ends) / 8;
                    break;
                }
                p += 8;
            }
        }
        while (p < end && !ends_plain_string(*p)) p++;
        if (p == end || *p != '"') return nullptr;
        text = start;
        length = size_t(p - start);
        return p + 1;
    }

    // An integer of at most 18 digits is exact in an int64. A fraction is read as an integer
    // mantissa up to 2^53 over a power of ten up to 10^18: both are exact doubles, so one
    // division rounds correctly, as simdjson's parse does.
    const unsigned char *number(const unsigned char *p, lc_json_value &value) const {
        bool negative = *p == '-';
        if (negative) p++;
        if (p == end || !is_digit(*p)) return nullptr;
        const unsigned char *digits = p;
        uint64_t mantissa = 0;
        if (*p == '0') {
            p++;
            if (p < end && is_digit(*p)) return nullptr;  // a leading zero is not JSON
        } else {
            while (p < end && is_digit(*p)) mantissa = mantissa * 10 + (*p++ - '0');
        }
        const unsigned char *point = p;
        if (p < end && *p == '.') {
            p++;
            while (p < end && is_digit(*p)) mantissa = mantissa * 10 + (*p++ - '0');
            if (p == point + 1) return nullptr;
        }
        // Past 18 digits the mantissa may have wrapped; it is not used then.
        size_t fraction = p > point ? size_t(p - point - 1) : 0;
        if (size_t(p - digits) - (fraction > 0 ? 1 : 0) > 18) return nullptr;
        if (p < end && (*p == 'e' || *p == 'E')) return nullptr;
        if (negative && mantissa == 0) return nullptr;  // -0 and -0.0: simdjson's
        if (fraction == 0) {
            int64_t integer = negative ? -int64_t(mantissa) : int64_t(mantissa);
            value = lc_json_value{LC_JSON_INT, integer, double(integer), nullptr, 0};
            return p;
        }
        if (mantissa > (uint64_t(1) << 53)) return nullptr;
        double number = double(mantissa) / powers_of_ten[fraction];
        value = lc_json_value{LC_JSON_DOUBLE, 0, negative ? -number : number, nullptr, 0};
        return p;
    }

    const unsigned char *literal(const unsigned char *p, const char *word, size_t length) const {
        if (size_t(end - p) < length || std::memcmp(p, word, length) != 0) return nullptr;
        return p + length;
    }

    // At a value's first byte. `node`: the key the value is under, when it is one of the
    // paths' keys (its paths get the value; its children are looked for inside).
    const unsigned char *value(const unsigned char *p, const key_node *node) {
        lc_json_value value{LC_JSON_OTHER, 0, 0, nullptr, 0};
        switch (*p) {
        case '{':
            p = object(p, node != nullptr && !node->children.empty() ? node : nullptr);
            break;
        case '[':
            p = array(p);
            break;
        case '"': {
            const unsigned char *text = nullptr;
            size_t length = 0;
            p = string(p, text, length);
            value = lc_json_value{LC_JSON_STRING, 0, 0, reinterpret_cast<const char *>(text), length};
            break;
        }
        case 't':
            p = literal(p, "true", 4);
            value = lc_json_value{LC_JSON_BOOL, 1, 1, nullptr, 0};
            break;
        case 'f':
            p = literal(p, "false", 5);
            value = lc_json_value{LC_JSON_BOOL, 0, 0, nullptr, 0};
            break;
        case 'n':
            p = literal(p, "null", 4);
            value = lc_json_value{LC_JSON_NULL, 0, 0, nullptr, 0};
            break;
        default:
            p = number(p, value);
        }
        if (p != nullptr && node != nullptr) {
            for (size_t path : node->paths) values[path] = value;
        }
        return p;
    }

    // The child of `node` named by the key, among those not seen yet in this object.
    static const key_node *child_named(const key_node &node, uint64_t &pending, const unsigned char *key, size_t length) {
        for (uint64_t rest = pending; rest != 0; rest &= rest - 1) {
            int index = __builtin_ctzll(rest);
            const key_node &child = node.children[size_t(index)];
            if (child.key.size() == length && std::memcmp(child.key.data(), key, length) == 0) {
                pending &= ~(uint64_t(1) << index);
                return &child;
            }
        }
        return nullptr;
    }

    // At a '{' or '[': the items up to the matching `close`, each read by `item` from its
    // first byte. A template, so that each container's item is inlined into its loop.
    template <typename Item>
    const unsigned char *container(const unsigned char *p, unsigned char close, Item item) {
        if (++depth > max_depth) return nullptr;
        p = skip_space(p + 1);
        if (p < end && *p == close) {
            depth--;
            return p + 1;
        }
        while (true) {
            if (p == end || (p = item(p)) == nullptr) return nullptr;
            p = skip_space(p);
            if (p == end) return nullptr;
            if (*p == close) {
                depth--;
                return p + 1;
            }
            if (*p != ',') return nullptr;
            p = skip_space(p + 1);
        }
    }

    // At a '{'. `node`: whose children to look for among the keys, or null.
    const unsigned char *object(const unsigned char *p, const key_node *node) {
        // As with simdjson's `at_key`, a key's first field is the one read.
        uint64_t pending = 0;
        if (node != nullptr) {
            size_t count = node->children.size();
            pending = count == plain_max_children ? ~uint64_t(0) : (uint64_t(1) << count) - 1;
        }
        return container(p, '}', [&](const unsigned char *at) -> const unsigned char * {
            if (*at != '"') return nullptr;
            const unsigned char *key = nullptr;
            size_t length = 0;
            at = string(at, key, length);
            if (at == nullptr) return nullptr;
            at = skip_space(at);
            if (at == end || *at != ':') return nullptr;
            at = skip_space(at + 1);
            if (at == end) return nullptr;
            return value(at, pending != 0 ? child_named(*node, pending, key, length) : nullptr);
        });
    }

    // At a '['.
    const unsigned char *array(const unsigned char *p) {
        return container(p, ']', [this](const unsigned char *at) { return value(at, nullptr); });
    }
};

}  // namespace

bool read_plain(const unsigned char *bytes, size_t length, const key_node &root, lc_json_value *values) {
    plain_reader reader{bytes + length, values};
    const unsigned char *p = reader.skip_space(bytes);
    if (p == reader.end || *p != '{') return false;
    p = reader.object(p, &root);
    return p != nullptr && reader.skip_space(p) == reader.end;
}
