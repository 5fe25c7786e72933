/// One decoded event as the engine reads it.
///
/// The buffers point into the decoder's memory and are valid only for the duration of the
/// `ingest` call: the engine copies what it keeps (an interned user id), so decoding and
/// ingesting an event allocates nothing on the hot path.
public struct EventInput {
    public var userID: UnsafeRawBufferPointer
    public var name: UnsafeRawBufferPointer
    /// Event time, epoch milliseconds.
    public var time: Int64
    /// One value per entry of `CompiledRules.propertyPaths`, in that order.
    public var properties: UnsafeBufferPointer<PropertyValue>

    public init(
        userID: UnsafeRawBufferPointer, name: UnsafeRawBufferPointer, time: Int64,
        properties: UnsafeBufferPointer<PropertyValue>
    ) {
        self.userID = userID
        self.name = name
        self.time = time
        self.properties = properties
    }
}

/// A property value read from an event (a JSON scalar), borrowed like `EventInput`.
public struct PropertyValue {
    public enum Kind: UInt8, Sendable {
        case missing, null, bool, number, string, other
    }

    public var kind: Kind
    /// The number for `.number`, 1 or 0 for `.bool`.
    public var number: Double
    /// The UTF-8 bytes for `.string`; empty otherwise.
    public var string: UnsafeRawBufferPointer

    public init(kind: Kind, number: Double = 0, string: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)) {
        self.kind = kind
        self.number = number
        self.string = string
    }

    public static var missing: PropertyValue { PropertyValue(kind: .missing) }
}
