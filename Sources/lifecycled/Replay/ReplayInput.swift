import ArgumentParser
import Glibc
import LifecycleCodec
import LifecycleEngine

/// The events a back-test reads and how far it goes: what `replay` and `diff` share.
struct ReplayInput: ParsableArguments {
    @Option(name: .shortAndLong, help: "NDJSON events; standard input when omitted or '-'.")
    var input: String?

    @Option(help: ArgumentHelp(
        "Advance stream time to TIME after the last event, firing timers due by then.",
        valueName: "TIME (RFC 3339 or epoch ms)"))
    var until: String?

    // Recorded events may be hours or days apart (a quiet partition, a sparse test file), so
    // the bound is looser than run's `events.max_future`, which is measured from the wall clock.
    @Option(help: ArgumentHelp(
        "Reject events further than this ahead of stream time as bad_time (a wrong clock would fire every timer at once).",
        valueName: "DURATION"))
    var maxFuture = "365d"

    func validate() throws {
        if let until, Self.parseTime(until) == nil {
            throw ValidationError("--until '\(until)': expected an RFC 3339 time (2026-11-22T10:00:00Z) or epoch milliseconds")
        }
        guard let ahead = Millis.parseDuration(maxFuture), ahead > 0 else {
            throw ValidationError("--max-future '\(maxFuture)': expected a duration longer than 0, e.g. 1h, 30d or 365d")
        }
    }

    var untilTime: Int64? { until.flatMap(Self.parseTime) }
    var maxFutureMillis: Int64 { Millis.parseDuration(maxFuture)! }

    /// The input's lines (a line over `maxLineBytes` is skipped as it is read); a file that
    /// cannot be opened, or a directory, exits 1 naming it.
    func reader(maxLineBytes: Int) throws -> LineReader {
        guard let input, input != "-" else {
            return LineReader(descriptor: STDIN_FILENO, path: "<stdin>", maxLineBytes: maxLineBytes)
        }
        let descriptor = open(input, O_RDONLY)
        guard descriptor >= 0 else {
            throw CommandFailure.report("\(input): cannot open: \(String(cString: strerror(errno)))", status: ExitStatus.usage)
        }
        var info = stat()
        if fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            close(descriptor)
            throw CommandFailure.report("\(input): is a directory; expected an NDJSON file", status: ExitStatus.usage)
        }
        return LineReader(descriptor: descriptor, path: input, maxLineBytes: maxLineBytes)
    }

    static func parseTime(_ text: String) -> Int64? {
        if let millis = Int64(text) { return millis }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { RFC3339.parseMillis(UnsafeRawBufferPointer($0)) }
    }
}
