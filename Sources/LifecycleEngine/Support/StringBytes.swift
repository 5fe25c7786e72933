extension String {
    /// Calls `body` with the string's UTF-8 bytes, borrowed where they are contiguous
    /// (always, for native strings): copying the string to call `withUTF8` costs a retain
    /// and a release, and iterating `utf8` several times as much per byte.
    @inlinable
    public func withUTF8Bytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) { return result }
        var copy = self
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}
