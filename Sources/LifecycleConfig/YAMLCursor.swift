import LifecycleEngine
import Yams

/// Typed, located reads from a YAML node tree. Every failure is a `ConfigError` at the node
/// concerned, naming the field by its dotted path and saying what was expected.
struct YAMLCursor {
    let file: String
    /// Problems found so far: readers record one and go on, so one run reports them all.
    let problems = ConfigProblems()

    /// Runs `read`; if it fails, records the problem and returns nil so reading goes on.
    func recover<T>(_ read: () throws(ConfigError) -> T) -> T? {
        do {
            return try read()
        } catch {
            problems.errors.append(error)
            return nil
        }
    }

    func error(_ message: String, at node: Node?) -> ConfigError {
        let mark = node?.mark
        return ConfigError(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message)
    }

    func location(_ node: Node) -> SourceLocation {
        SourceLocation(line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    /// Where the text of a scalar starts: past the opening quote of a quoted scalar.
    func textLocation(_ node: Node) -> SourceLocation {
        let start = location(node)
        guard case .scalar(let scalar) = node else { return start }
        return scalar.style == .singleQuoted || scalar.style == .doubleQuoted ? start.advanced(by: 1) : start
    }

    /// Sets `field` from `map[key]` when it is there and valid; a problem is recorded and
    /// the field keeps its value.
    func read<T>(
        _ map: Node.Mapping, _ key: String, of section: String, into field: inout T,
        _ value: (Node, String) throws(ConfigError) -> T
    ) {
        guard let node = map[key], let read = recover({ () throws(ConfigError) in try value(node, "\(section).\(key)") }) else { return }
        field = read
    }

    func mapping(_ node: Node, _ path: String) throws(ConfigError) -> Node.Mapping {
        guard case .mapping(let mapping) = node else {
            throw error("\(path): expected a mapping (key: value pairs), found \(kind(node))", at: node)
        }
        return mapping
    }

    /// Records every key outside `allowed`, suggesting the closest one.
    func checkKeys(_ mapping: Node.Mapping, allowed: [String], _ path: String) {
        for (key, _) in mapping {
            let name = key.string ?? ""
            guard !allowed.contains(name) else { continue }
            let suggestion = allowed.min { editDistance($0, name) < editDistance($1, name) }
            let hint = suggestion.map { editDistance($0, name) <= 2 ? " (did you mean '\($0)'?)" : "" } ?? ""
            problems.errors.append(error(
                "\(path): unknown key '\(name)'\(hint); expected one of \(allowed.joined(separator: ", "))", at: key))
        }
    }

    func value(_ mapping: Node.Mapping, _ key: String) -> Node? { mapping[key] }

    func required(_ mapping: Node.Mapping, _ key: String, _ path: String, parent: Node) throws(ConfigError) -> Node {
        guard let node = mapping[key] else { throw error("\(path): missing required key '\(key)'", at: parent) }
        return node
    }

    func string(_ node: Node, _ path: String) throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else {
            throw error("\(path): expected text, found \(kind(node))", at: node)
        }
        return scalar.string
    }

    func nonEmptyString(_ node: Node, _ path: String) throws(ConfigError) -> String {
        let text = try string(node, path)
        guard !text.isEmpty else { throw error("\(path): must not be empty", at: node) }
        return text
    }

    /// A name (an event, a stage, a topic) is text: a plain number or boolean is refused
    /// rather than read as the name "5", since it is most likely a mistake.
    func located(_ node: Node, _ path: String) throws(ConfigError) -> Located<String> {
        if case .scalar(let scalar) = node, [Tag.Name.int, .float, .bool].map(\.rawValue).contains(node.tag.rawValue) {
            throw error("\(path): expected a name (text), found \(scalar.string); quote it (\"\(scalar.string)\") if it is a name", at: node)
        }
        return Located(try nonEmptyString(node, path), at: location(node))
    }

    /// One name or a list of names.
    func names(_ node: Node, _ path: String) throws(ConfigError) -> [Located<String>] {
        switch node {
        case .scalar: return [try located(node, path)]
        case .sequence(let sequence):
            guard !sequence.isEmpty else { throw error("\(path): the list is empty", at: node) }
            var names: [Located<String>] = []
            for (index, item) in sequence.enumerated() { names.append(try located(item, "\(path)[\(index)]")) }
            return names
        default:
            throw error("\(path): expected a name or a list of names, found \(kind(node))", at: node)
        }
    }

    /// `any`, one event name, or a list of event names.
    func selector(_ node: Node, _ path: String) throws(ConfigError) -> EventSelector {
        if case .scalar(let scalar) = node, scalar.string == "any" { return .any }
        return .names(try names(node, path))
    }

    func duration(_ node: Node, _ path: String) throws(ConfigError) -> Int64 {
        guard case .scalar(let scalar) = node else {
            throw error("\(path): expected a duration like 10m, 7d or 1d12h, found \(kind(node))", at: node)
        }
        guard let duration = Millis.parseDuration(scalar.string) else {
            throw error("\(path): '\(scalar.string)' is not a duration; expected e.g. 500ms, 30s, 10m, 12h, 7d or 1d12h", at: node)
        }
        return duration
    }

    /// `true` or `false` (YAML 1.2: not yes/no/on/off).
    func boolean(_ node: Node, _ path: String) throws(ConfigError) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Bool(scalar.string) else {
            throw error("\(path): expected true or false", at: node)
        }
        return value
    }

    func positiveInteger(_ node: Node, _ path: String) throws(ConfigError) -> Int {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string), value > 0 else {
            throw error("\(path): expected a positive whole number", at: node)
        }
        return value
    }

    /// A percentage in steps of 0.01 % (`10%`, `2.5%`, `0.01%`), as basis points, located.
    func percentage(_ node: Node, _ path: String) throws(ConfigError) -> Located<Int> {
        let expected = "expected a percentage such as 10%, 2.5% or 0.01%"
        guard case .scalar(let scalar) = node, scalar.string.hasSuffix("%") else {
            throw error("\(path): \(expected), found \(kind(node))", at: node)
        }
        let number = scalar.string.dropLast()
        let parts = number.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = Int(parts[0]), whole >= 0, parts[0].allSatisfy(\.isNumber),
              parts.count == 1 || (1...2).contains(parts[1].count) && parts[1].allSatisfy(\.isNumber)
        else {
            throw error("\(path): '\(scalar.string)' is not a percentage in steps of 0.01%; \(expected)", at: node)
        }
        let fraction = parts.count == 2 ? Int(parts[1].padding(toLength: 2, withPad: "0", startingAt: 0))! : 0
        let (basisPoints, overflow) = whole.multipliedReportingOverflow(by: 100)
        guard !overflow else { throw error("\(path): '\(scalar.string)' is out of range; \(expected)", at: node) }
        return Located(basisPoints + fraction, at: location(node))
    }

    /// An identifier, so the name can be used in conditions.
    func identifier(_ node: Node, _ path: String) throws(ConfigError) -> String {
        let name = try nonEmptyString(node, path)
        let valid = name.first.map { $0.isLetter || $0 == "_" } == true
            && name.allSatisfy { ($0.isLetter || $0.isNumber || $0 == "_") && $0.isASCII }
        guard valid else {
            throw error("\(path): '\(name)' is not a valid name; use letters, digits and _ (not starting with a digit)", at: node)
        }
        return name
    }

    func kind(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): "'\(scalar.string)'"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    private func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
