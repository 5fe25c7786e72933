// simdjson's DOM parser behind a C interface. One reader owns one parser and one padded
// input buffer, both reused, so parsing a stream of events allocates nothing once warm.
#include "event_json.h"

#include <simdjson.h>

#include <cstring>
#include <new>
#include <string>
#include <vector>

struct lc_json_reader {
    simdjson::dom::parser parser;
    std::vector<std::vector<std::string>> paths;  // each path split into keys
    std::vector<char> input;                       // length + SIMDJSON_PADDING
};

extern "C" lc_json_reader *lc_json_reader_new(const char *const *paths, size_t count) {
    auto *reader = new (std::nothrow) lc_json_reader();
    if (reader == nullptr) return nullptr;
    try {
        for (size_t i = 0; i < count; i++) {
            std::vector<std::string> keys;
            std::string path(paths[i]);
            size_t start = 0;
            while (true) {
                size_t dot = path.find('.', start);
                keys.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
                if (dot == std::string::npos) break;
                start = dot + 1;
            }
            reader->paths.push_back(std::move(keys));
        }
    } catch (...) {
        delete reader;
        return nullptr;
    }
    return reader;
}

extern "C" void lc_json_reader_free(lc_json_reader *reader) { delete reader; }

static void fill(simdjson::dom::element element, lc_json_value *value) {
    *value = lc_json_value{LC_JSON_OTHER, 0, 0, nullptr, 0};
    switch (element.type()) {
    case simdjson::dom::element_type::NULL_VALUE:
        value->kind = LC_JSON_NULL;
        break;
    case simdjson::dom::element_type::BOOL:
        value->kind = LC_JSON_BOOL;
        value->integer = element.get_bool().value_unsafe() ? 1 : 0;
        value->number = double(value->integer);
        break;
    case simdjson::dom::element_type::INT64:
        value->kind = LC_JSON_INT;
        value->integer = element.get_int64().value_unsafe();
        value->number = double(value->integer);
        break;
    case simdjson::dom::element_type::UINT64:  // beyond int64: only usable as a double
        value->kind = LC_JSON_DOUBLE;
        value->number = double(element.get_uint64().value_unsafe());
        break;
    case simdjson::dom::element_type::DOUBLE:
        value->kind = LC_JSON_DOUBLE;
        value->number = element.get_double().value_unsafe();
        break;
    case simdjson::dom::element_type::STRING: {
        std::string_view text = element.get_string().value_unsafe();
        value->kind = LC_JSON_STRING;
        value->string = text.data();
        value->length = text.size();
        break;
    }
    default:
        break;
    }
}

extern "C" lc_json_status lc_json_reader_read(lc_json_reader *reader, const void *bytes, size_t length,
                                              lc_json_value *values) {
    size_t needed = length + simdjson::SIMDJSON_PADDING;
    if (reader->input.size() < needed) {
        try {
            reader->input.resize(needed);
        } catch (...) {
            return LC_JSON_NOT_JSON;
        }
    }
    if (length > 0) std::memcpy(reader->input.data(), bytes, length);
    std::memset(reader->input.data() + length, 0, simdjson::SIMDJSON_PADDING);

    simdjson::dom::element root;
    if (reader->parser.parse(reader->input.data(), length, false).get(root) != simdjson::SUCCESS) {
        return LC_JSON_NOT_JSON;
    }
    simdjson::dom::object object;
    if (root.get_object().get(object) != simdjson::SUCCESS) return LC_JSON_NOT_OBJECT;

    for (size_t i = 0; i < reader->paths.size(); i++) {
        values[i] = lc_json_value{LC_JSON_MISSING, 0, 0, nullptr, 0};
        simdjson::dom::object current = object;
        const auto &keys = reader->paths[i];
        for (size_t k = 0; k < keys.size(); k++) {
            simdjson::dom::element child;
            if (current.at_key(keys[k]).get(child) != simdjson::SUCCESS) break;
            if (k + 1 == keys.size()) {
                fill(child, &values[i]);
            } else if (child.get_object().get(current) != simdjson::SUCCESS) {
                break;  // an intermediate key that is not an object: the path is missing
            }
        }
    }
    return LC_JSON_OK;
}
