import Glibc

/// Reads newline-delimited records from a file descriptor in large blocks and hands each
/// line to the caller as borrowed bytes: no `String` or `Data` per line.
struct LineReader: ~Copyable {
    struct ReadError: Error, CustomStringConvertible {
        var path: String
        var code: Int32
        var description: String { "\(path): read failed: \(String(cString: strerror(code)))" }
    }

    private let descriptor: Int32
    private let path: String
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0

    /// Takes ownership of `descriptor` (closes it unless it is standard input).
    init(descriptor: Int32, path: String, blockSize: Int = 1 << 20) {
        self.descriptor = descriptor
        self.path = path
        buffer = .allocate(byteCount: blockSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        if descriptor != STDIN_FILENO { close(descriptor) }
    }

    /// Calls `body` with each line (without its `\n` or `\r\n`) and its 1-based number.
    mutating func forEachLine(_ body: (UnsafeRawBufferPointer, Int) throws -> Void) throws {
        var lineNumber = 0
        while true {
            // Emit every complete line in the buffer.
            while let newline = firstNewline() {
                lineNumber += 1
                var lineEnd = newline
                if lineEnd > start, buffer[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                try body(UnsafeRawBufferPointer(rebasing: buffer[start..<lineEnd]), lineNumber)
                start = newline + 1
            }
            // Keep the partial line; grow the buffer if one line fills it.
            if start > 0 {
                let pending = end - start
                if pending > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: pending) }
                start = 0
                end = pending
            } else if end == buffer.count {
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                larger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = larger
            }
            let count = read(descriptor, buffer.baseAddress! + end, buffer.count - end)
            if count < 0 {
                if errno == EINTR { continue }
                throw ReadError(path: path, code: errno)
            }
            if count == 0 {
                if end > start {
                    lineNumber += 1
                    try body(UnsafeRawBufferPointer(rebasing: buffer[start..<end]), lineNumber)
                }
                return
            }
            end += count
        }
    }

    private func firstNewline() -> Int? {
        guard start < end else { return nil }
        let base = buffer.baseAddress! + start
        guard let found = memchr(base, Int32(UInt8(ascii: "\n")), end - start) else { return nil }
        return start + (UnsafeRawPointer(found) - UnsafeRawPointer(base))
    }
}

/// A buffered writer for standard output or error; flushes in large blocks.
struct OutputWriter: ~Copyable {
    struct WriteError: Error, CustomStringConvertible {
        var code: Int32
        var description: String { "write to output failed: \(String(cString: strerror(code)))" }
    }

    private let descriptor: Int32
    private(set) var buffer: [UInt8] = []
    private let flushThreshold: Int

    init(descriptor: Int32, flushThreshold: Int = 1 << 16) {
        self.descriptor = descriptor
        self.flushThreshold = flushThreshold
        buffer.reserveCapacity(flushThreshold * 2)
    }

    /// Lets the caller append bytes directly (e.g. an encoder), flushing when the buffer is full.
    mutating func append(_ body: (inout [UInt8]) -> Void) throws {
        body(&buffer)
        if buffer.count >= flushThreshold { try flush() }
    }

    mutating func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= flushThreshold { try flush() }
    }

    mutating func flush() throws {
        var written = 0
        while written < buffer.count {
            let count = buffer.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                throw WriteError(code: errno)
            }
            written += count
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
