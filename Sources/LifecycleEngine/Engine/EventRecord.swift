/// An owned event, for tests and tools that build events in Swift rather than decode them.
public struct EventRecord: Sendable, Equatable {
    public enum Property: Sendable, Equatable {
        case string(String)
        case number(Double)
        case bool(Bool)
    }

    public var userID: String
    public var name: String
    public var time: Int64
    /// Values by dot path (as the rules name them, e.g. `props.amount`).
    public var properties: [String: Property]

    public init(userID: String, name: String, time: Int64, properties: [String: Property] = [:]) {
        self.userID = userID
        self.name = name
        self.time = time
        self.properties = properties
    }
}

extension PartitionEngine {
    /// Ingests an owned event (allocates; the hot path decodes straight into `EventInput`).
    @discardableResult
    public mutating func ingest(
        _ record: EventRecord, into output: inout EngineOutput, notAfter: Int64 = .max
    ) -> IngestOutcome {
        let strings = [record.userID, record.name] + rules.propertyPaths.map { path in
            if case .string(let value) = record.properties[path] { return value }
            return ""
        }
        var bytes: [UInt8] = strings.flatMap { Array($0.utf8) }
        return bytes.withUnsafeMutableBytes { raw in
            var cursor = 0
            func next(_ string: String) -> UnsafeRawBufferPointer {
                let count = string.utf8.count
                defer { cursor += count }
                return UnsafeRawBufferPointer(rebasing: raw[cursor..<(cursor + count)])
            }
            let userID = next(record.userID)
            let name = next(record.name)
            let properties = rules.propertyPaths.map { path -> PropertyValue in
                switch record.properties[path] {
                case .string(let value): return PropertyValue(kind: .string, string: next(value))
                case .number(let value): _ = next(""); return PropertyValue(kind: .number, number: value)
                case .bool(let value): _ = next(""); return PropertyValue(kind: .bool, number: value ? 1 : 0)
                case nil: _ = next(""); return .missing
                }
            }
            return properties.withUnsafeBufferPointer { buffer in
                ingest(
                    EventInput(userID: userID, name: name, time: record.time, properties: buffer), into: &output,
                    notAfter: notAfter)
            }
        }
    }
}
