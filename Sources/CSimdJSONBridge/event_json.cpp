// Event JSON behind a C interface: the plain reader (plain_json.cpp) for the common
// document, simdjson's DOM parser for every other. One reader owns one parser and one padded
// input buffer, both reused, so parsing a stream of events allocates nothing once warm.
#include "event_json.h"
#include "key_tree.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <vector>

struct lc_json_reader {
    simdjson::dom::parser parser;
    key_node root;
    size_t path_count = 0;
    bool plain_readable = true;  // no key has more children than the plain reader tracks
    std::vector<char> input;  // length + SIMDJSON_PADDING
};

static bool fits_plain_reader(const key_node &node) {
    if (node.children.size() > plain_max_children) return false;
    return std::all_of(node.children.begin(), node.children.end(), fits_plain_reader);
}

static key_node &child_named(key_node &node, const std::string &key) {
    for (auto &child : node.children) {
        if (child.key == key) return child;
    }
    node.children.push_back(key_node{key, {}, {}, {}});
    node.found.push_back(0);
    return node.children.back();
}

extern "C" lc_json_reader *lc_json_reader_new(const char *const *paths, size_t count) {
    auto *reader = new (std::nothrow) lc_json_reader();
    if (reader == nullptr) return nullptr;
    try {
        for (size_t i = 0; i < count; i++) {
            key_node *node = &reader->root;
            std::string path(paths[i]);
            size_t start = 0;
            while (true) {
                size_t dot = path.find('.', start);
                node = &child_named(*node, path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
                if (dot == std::string::npos) break;
                start = dot + 1;
            }
            node->paths.push_back(i);
        }
        reader->path_count = count;
        reader->plain_readable = fits_plain_reader(reader->root);
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

// Fills the values of the paths below `node` from `object`. As with `at_key`, a key's first
// field is the one read, and a path through a value that is not an object is missing.
static void read_fields(simdjson::dom::object object, key_node &node, lc_json_value *values) {
    std::fill(node.found.begin(), node.found.end(), 0);
    size_t remaining = node.children.size();
    for (auto field : object) {
        for (size_t c = 0; c < node.children.size(); c++) {
            key_node &child = node.children[c];
            if (node.found[c] || field.key.size() != child.key.size() ||
                std::memcmp(field.key.data(), child.key.data(), child.key.size()) != 0) {
                continue;
            }
            node.found[c] = 1;
            remaining--;
            for (size_t path : child.paths) fill(field.value, &values[path]);
            simdjson::dom::object inner;
            if (!child.children.empty() && field.value.get_object().get(inner) == simdjson::SUCCESS) {
                read_fields(inner, child, values);
            }
            break;
        }
        if (remaining == 0) return;
    }
}

static void set_missing(const lc_json_reader *reader, lc_json_value *values) {
    for (size_t i = 0; i < reader->path_count; i++) values[i] = lc_json_value{LC_JSON_MISSING, 0, 0, nullptr, 0};
}

extern "C" int lc_json_reader_read_plain(lc_json_reader *reader, const void *bytes, size_t length,
                                         lc_json_value *values) {
    // simdjson refuses documents beyond its capacity (4 GiB); so must the plain reader.
    if (!reader->plain_readable || length > reader->parser.max_capacity()) return 0;
    set_missing(reader, values);
    return read_plain(static_cast<const unsigned char *>(bytes), length, reader->root, values) ? 1 : 0;
}

extern "C" lc_json_status lc_json_reader_read_simdjson(lc_json_reader *reader, const void *bytes, size_t length,
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

    set_missing(reader, values);
    read_fields(object, reader->root, values);
    return LC_JSON_OK;
}

extern "C" lc_json_status lc_json_reader_read(lc_json_reader *reader, const void *bytes, size_t length,
                                              lc_json_value *values) {
    if (lc_json_reader_read_plain(reader, bytes, length, values)) return LC_JSON_OK;
    return lc_json_reader_read_simdjson(reader, bytes, length, values);
}
