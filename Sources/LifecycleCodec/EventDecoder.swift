import CSimdJSONBridge
import Glibc
import LifecycleEngine

/// Why an event was rejected: a stable name (metric label, dead-letter reason header) and
/// a sentence for people.
public enum EventRejection: String, Error, Sendable, CaseIterable, CustomStringConvertible {
    case tooLarge = "too_large"
    case notJSON = "not_json"
    case notObject = "not_object"
    case missingUserID = "missing_user_id"
    case badUserID = "bad_user_id"
    case missingEvent = "missing_event"
    case badEvent = "bad_event"
    case missingTime = "missing_time"
    case badTime = "bad_time"

    public var description: String {
        switch self {
        case .tooLarge: "the message is larger than events.max_event_bytes"
        case .notJSON: "the message is not valid JSON"
        case .notObject: "the message is JSON but not an object"
        case .missingUserID: "the user id field is missing, null or empty"
        case .badUserID: "the user id is not a string or an integer, or is longer than 255 bytes"
        case .missingEvent: "the event name field is missing, null or empty"
        case .badEvent: "the event name is not a string"
        case .missingTime: "the time field is missing and the message has no timestamp"
        case .badTime: "the time is not epoch milliseconds or RFC 3339 between 2000 and 2090"
        }
    }
}

/// Decodes JSON events into the engine's `EventInput`: plain JSON (ASCII strings without
/// escapes, short numbers without exponents: nearly every event) in one pass by the shim's
/// own reader, any other document by simdjson, with the same values and rejections.
///
/// One decoder per thread; it owns its parser and buffers, so decoding allocates nothing
/// per event. The `EventInput` handed to the closure borrows the decoder's memory and the
/// message's.
public struct EventDecoder: ~Copyable {
    private let reader: OpaquePointer
    private let values: UnsafeMutableBufferPointer<lc_json_value>
    private let properties: UnsafeMutableBufferPointer<PropertyValue>
    /// Integer user ids are rendered here as decimal text.
    private let scratch: UnsafeMutableRawBufferPointer
    private let maxEventBytes: Int

    /// Valid event times: 2000-01-01 up to (not including) 2090-01-01.
    public static let earliestTime: Int64 = 946_684_800_000
    public static let latestTime: Int64 = 3_786_912_000_000

    public init(fields: EventFields, propertyPaths: [String]) {
        let paths = [fields.userID, fields.name, fields.time] + propertyPaths
        var cStrings = paths.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        reader = cStrings.withUnsafeMutableBufferPointer { buffer in
            buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { lc_json_reader_new($0.baseAddress, paths.count) }
        }!
        values = .allocate(capacity: paths.count)
        properties = .allocate(capacity: propertyPaths.count)
        properties.initialize(repeating: .missing)
        scratch = .allocate(byteCount: 32, alignment: 8)
        maxEventBytes = fields.maxEventBytes
    }

    deinit {
        lc_json_reader_free(reader)
        values.deallocate()
        properties.deallocate()
        scratch.deallocate()
    }

    /// Decodes `message` and passes the event to `body`; returns why it was rejected, or nil.
    /// `fallbackTime` (e.g. the Kafka message timestamp) is used when the time field is absent.
    /// Not generic on purpose: called across modules per event, a generic result would cost
    /// a runtime metadata lookup each time.
    public mutating func decode(
        _ message: UnsafeRawBufferPointer, fallbackTime: Int64?, _ body: (EventInput) throws -> Void
    ) rethrows -> EventRejection? {
        guard message.count <= maxEventBytes else { return .tooLarge }
        switch lc_json_reader_read(reader, message.baseAddress, message.count, values.baseAddress) {
        case LC_JSON_OK: break
        case LC_JSON_NOT_OBJECT: return .notObject
        default: return .notJSON
        }
        let userID: UnsafeRawBufferPointer
        switch values[0].kind {
        case LC_JSON_STRING where values[0].length > 0:
            guard values[0].length <= 255 else { return .badUserID }
            userID = UnsafeRawBufferPointer(start: values[0].string, count: values[0].length)
        case LC_JSON_INT:
            userID = renderDecimal(values[0].integer)
        case LC_JSON_MISSING, LC_JSON_NULL, LC_JSON_STRING:
            return .missingUserID
        default:
            return .badUserID
        }
        let name: UnsafeRawBufferPointer
        switch values[1].kind {
        case LC_JSON_STRING where values[1].length > 0:
            name = UnsafeRawBufferPointer(start: values[1].string, count: values[1].length)
        case LC_JSON_MISSING, LC_JSON_NULL, LC_JSON_STRING:
            return .missingEvent
        default:
            return .badEvent
        }
        let time: Int64
        switch values[2].kind {
        case LC_JSON_INT:
            time = values[2].integer
        case LC_JSON_DOUBLE where values[2].number.rounded(.towardZero) == values[2].number && abs(values[2].number) < 1e15:
            time = Int64(values[2].number)
        case LC_JSON_STRING:
            guard let parsed = RFC3339.parseMillis(UnsafeRawBufferPointer(start: values[2].string, count: values[2].length)) else {
                return .badTime
            }
            time = parsed
        case LC_JSON_MISSING, LC_JSON_NULL:
            guard let fallbackTime else { return .missingTime }
            time = fallbackTime
        default:
            return .badTime
        }
        guard time >= Self.earliestTime, time < Self.latestTime else { return .badTime }
        for index in properties.indices {
            properties[index] = Self.property(values[index + 3])
        }
        try body(EventInput(userID: userID, name: name, time: time, properties: UnsafeBufferPointer(properties)))
        return nil
    }

    private static func property(_ value: lc_json_value) -> PropertyValue {
        switch value.kind {
        case LC_JSON_STRING:
            PropertyValue(kind: .string, string: UnsafeRawBufferPointer(start: value.string, count: value.length))
        case LC_JSON_INT, LC_JSON_DOUBLE: PropertyValue(kind: .number, number: value.number)
        case LC_JSON_BOOL: PropertyValue(kind: .bool, number: value.number)
        case LC_JSON_NULL: PropertyValue(kind: .null)
        case LC_JSON_MISSING: .missing
        default: PropertyValue(kind: .other)
        }
    }

    private func renderDecimal(_ value: Int64) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: scratch[writeDecimal(value, endingAt: scratch)...])
    }
}
