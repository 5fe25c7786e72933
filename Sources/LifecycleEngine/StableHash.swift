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

    public mutating func combine(_ string: String) { string.withUTF8Bytes { combine($0) } }

    public mutating func combine(_ value: Int64) {
        withUnsafeBytes(of: value.littleEndian) { combine($0) }
    }

    private static func avalanche(_ value: UInt64) -> UInt64 { SplitMix64.mix(value &+ 0x9e37_79b9_7f4a_7c15) }

    public var value64: UInt64 { Self.avalanche(lanes.0) }

    public var value128: (high: UInt64, low: UInt64) { (Self.avalanche(lanes.0), Self.avalanche(lanes.1 ^ lanes.0)) }

    /// 16 lowercase hex digits.
    public var hex64: String {
        var digits: [UInt8] = []
        Self.appendHex(value64, to: &digits)
        return String(decoding: digits, as: UTF8.self)
    }

    /// Appends `value` as 16 lowercase hex digits, written into a local buffer and appended
    /// at once (an append per digit checked the array's capacity 16 times).
    @inline(__always)
    public static func appendHex(_ value: UInt64, to out: inout [UInt8]) {
        var digits: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            writeHex(value, into: buffer, at: 0)
            out.append(contentsOf: UnsafeRawBufferPointer(buffer))
        }
    }

    /// Writes `value` as 16 lowercase hex digits into `buffer` from `start`.
    @inline(__always)
    static func writeHex(_ value: UInt64, into buffer: UnsafeMutableRawBufferPointer, at start: Int) {
        for index in 0..<16 {
            let digit = UInt8(truncatingIfNeeded: value >> UInt64(60 - 4 * index)) & 0xF
            buffer[start + index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") - 10 + digit
        }
    }
}

/// A trigger's deterministic id: 128 bits of `StableHash`, written as 32 lowercase hex digits.
public struct TriggerID: Sendable, Hashable, CustomStringConvertible {
    let high: UInt64
    let low: UInt64

    init(_ hash: StableHash) { (high, low) = hash.value128 }

    /// Both halves in one buffer, appended at once.
    public func appendHex(to out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            StableHash.writeHex(high, into: buffer, at: 0)
            StableHash.writeHex(low, into: buffer, at: 16)
            out.append(contentsOf: UnsafeRawBufferPointer(buffer))
        }
    }

    public var description: String {
        var digits: [UInt8] = []
        appendHex(to: &digits)
        return String(decoding: digits, as: UTF8.self)
    }
}
