// The configured dot paths as a tree of keys, shared by the two readers of the shim.
#ifndef LIFECYCLED_KEY_TREE_H
#define LIFECYCLED_KEY_TREE_H

#include "event_json.h"

#include <string>
#include <vector>

// One pass over an object's fields finds every path through it: looking each path up by
// itself walked the fields once per path.
struct key_node {
    std::string key;
    std::vector<size_t> paths;        // paths that end at this key
    std::vector<key_node> children;   // keys below it
    std::vector<unsigned char> found; // simdjson reader, per child: its first field was seen
};

// The plain reader tracks the children still to find in a 64-bit mask.
constexpr size_t plain_max_children = 64;

// Reads `length` bytes if they are plain JSON (see plain_json.cpp), filling the values of the
// paths below `root` that are present; the caller has set every value to missing. Returns
// false, having read nothing usable, for anything else: simdjson then decides.
bool read_plain(const unsigned char *bytes, size_t length, const key_node &root, lc_json_value *values);

#endif
