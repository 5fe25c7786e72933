/// A stable, platform-independent hash for deterministic ids (not for security).
///
/// Swift's `Hasher` is seeded per process, so it cannot make ids that replay and a restarted
/// daemon agree on. This is 64-bit FNV-1a followed by a strong avalanche (the SplitMix64
/// finalizer), computed in two lanes with different seeds for 128-bit ids.
public struct StableHash: Sendable {
    private var lanes: (UInt64, UInt64) = (0xcbf2_9ce4_8422_2325, 0x8422_2325_cbf2_9ce4)
    private static let prime: UInt64 = 0x0000_0100_0000_01b3

    public init() {}

    public mutating func combine(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            lanes.0 = (lanes.0 ^ UInt64(byte)) &* Self.prime
            lanes.1 = (lanes.1 ^ UInt64(byte ^ 0x5a)) &* Self.prime
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        lanes.0 = (lanes.0 ^ 0xff) &* Self.prime
        lanes.1 = (lanes.1 ^ 0xfe) &* Self.prime
    }

    public mutating func combine(_ string: String) { combine(string.utf8) }

    public mutating func combine(_ value: Int64) {
        withUnsafeBytes(of: value.littleEndian) { combine($0) }
    }

    private static func avalanche(_ value: UInt64) -> UInt64 { SplitMix64.mix(value &+ 0x9e37_79b9_7f4a_7c15) }

    public var value64: UInt64 { Self.avalanche(lanes.0) }

    /// 32 lowercase hex digits.
    public var hex128: String { Self.hex(Self.avalanche(lanes.0)) + Self.hex(Self.avalanche(lanes.1 ^ lanes.0)) }

    /// 16 lowercase hex digits.
    public var hex64: String { Self.hex(value64) }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
