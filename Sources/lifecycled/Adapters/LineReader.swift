import Glibc

/// Reads newline-delimited records from a file descriptor in large blocks and hands each
/// line to the caller as borrowed bytes: no `String` or `Data` per line. A line longer than
/// `maxLineBytes` is never held whole: its bytes are dropped as they are read, and the caller
/// learns only that it was too long. Each byte is searched for a newline once, so a long line
/// arriving in many small reads (a pipe) costs linear time.
struct LineReader: ~Copyable {
    struct ReadError: Error, CustomStringConvertible {
        var path: String
        var code: Int32
        var description: String { "\(path): read failed: \(String(cString: strerror(code)))" }
    }

    enum Line {
        /// The line without its `\n` or `\r\n`.
        case text(UnsafeRawBufferPointer)
        /// Longer than `maxLineBytes`; its bytes were skipped.
        case tooLong
    }

    private let descriptor: Int32
    private let path: String
    private let maxLineBytes: Int
    private var buffer: UnsafeMutableRawBufferPointer
    /// The unconsumed bytes are `start..<end`; `start..<scanned` holds no newline.
    private var start = 0
    private var scanned = 0
    private var end = 0

    /// Takes ownership of `descriptor` (closes it unless it is standard input).
    init(descriptor: Int32, path: String, maxLineBytes: Int, blockSize: Int = 1 << 20) {
        self.descriptor = descriptor
        self.path = path
        self.maxLineBytes = maxLineBytes
        buffer = .allocate(byteCount: blockSize, alignment: 16)
    }

    deinit {
        buffer.deallocate()
        if descriptor != STDIN_FILENO { close(descriptor) }
    }

    /// Calls `body` with each line and its 1-based number.
    mutating func forEachLine(_ body: (Line, Int) throws -> Void) throws {
        var lineNumber = 0
        // Inside a line longer than the limit: its bytes are dropped as they arrive.
        var skipping = false
        while true {
            while let newline = nextNewline() {
                lineNumber += 1
                var lineEnd = newline
                if lineEnd > start, buffer[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                try body(skipping ? .tooLong : line(start..<lineEnd), lineNumber)
                skipping = false
                start = newline + 1
                scanned = start
            }
            // No newline in the buffer: the pending bytes are one partial line.
            if skipping || end - start > maxLineBytes + 1 {  // + 1: the `\r` of a `\r\n`
                skipping = true
                start = 0
                scanned = 0
                end = 0
            } else if start > 0 {
                let pending = end - start
                if pending > 0 { buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: pending) }
                scanned -= start
                start = 0
                end = pending
            } else if end == buffer.count {
                let larger = UnsafeMutableRawBufferPointer.allocate(
                    byteCount: min(buffer.count * 2, maxLineBytes + 2), alignment: 16)
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
                if skipping || end > start {
                    lineNumber += 1
                    try body(skipping ? .tooLong : line(start..<end), lineNumber)
                }
                return
            }
            end += count
        }
    }

    private func line(_ range: Range<Int>) -> Line {
        range.count > maxLineBytes ? .tooLong : .text(UnsafeRawBufferPointer(rebasing: buffer[range]))
    }

    /// The next newline after `scanned`, remembering how far the search went.
    private mutating func nextNewline() -> Int? {
        guard scanned < end else { return nil }
        let base = buffer.baseAddress! + scanned
        guard let found = memchr(base, Int32(UInt8(ascii: "\n")), end - scanned) else {
            scanned = end
            return nil
        }
        return scanned + (UnsafeRawPointer(found) - UnsafeRawPointer(base))
    }
}

/// A buffered writer for standard output or error; flushes in large blocks.
struct OutputWriter: ~Copyable {
    struct WriteError: Error, CustomStringConvertible {
        var name: String
        var code: Int32
        var description: String { "writing to \(name) failed: \(String(cString: strerror(code)))" }
    }

    private let descriptor: Int32
    /// What the descriptor is, for errors ("standard output").
    private let name: String
    private(set) var buffer: [UInt8] = []
    private let flushThreshold: Int

    init(descriptor: Int32, name: String, flushThreshold: Int = 1 << 16) {
        self.descriptor = descriptor
        self.name = name
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
                throw WriteError(name: name, code: errno)
            }
            written += count
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
