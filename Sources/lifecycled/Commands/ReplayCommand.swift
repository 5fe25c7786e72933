import ArgumentParser
import Glibc
import LifecycleCodec
import LifecycleConfig
import LifecycleEngine

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Back-test rules offline: NDJSON events in, NDJSON triggers on stdout, a summary on stderr.",
        discussion: """
            The input is one partition: stream time is the largest event time seen. Bad lines are \
            counted by reason (with their line numbers) and never stop the replay. The output is \
            deterministic: the same config and input give byte-identical triggers, ids included.
            """
    )

    @Option(name: .shortAndLong, help: "The config file (YAML).")
    var config: String

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

    @Flag(help: "Do not print progress or the summary on standard error.")
    var quiet = false

    func validate() throws {
        if let until, Self.parseTime(until) == nil {
            throw ValidationError("--until '\(until)': expected an RFC 3339 time (2026-11-22T10:00:00Z) or epoch milliseconds")
        }
        guard let ahead = Millis.parseDuration(maxFuture), ahead > 0 else {
            throw ValidationError("--max-future '\(maxFuture)': expected a duration longer than 0, e.g. 1h, 30d or 365d")
        }
    }

    func run() throws {
        let loaded = try loadConfig(config)
        let maxLineBytes = loaded.compiled.rules.events.maxEventBytes
        var reader: LineReader
        if let input, input != "-" {
            reader = LineReader(descriptor: try Self.openInput(input), path: input, maxLineBytes: maxLineBytes)
        } else {
            reader = LineReader(descriptor: STDIN_FILENO, path: "<stdin>", maxLineBytes: maxLineBytes)
        }
        let progress = ProgressReporter(enabled: !quiet)
        var session = ReplaySession(rules: loaded.compiled, maxFuture: Millis.parseDuration(maxFuture)!, progress: progress)
        do {
            try session.run(&reader, until: until.flatMap(Self.parseTime))
        } catch {
            throw CommandFailure.report("replay failed: \(error)", status: ExitStatus.runtime)
        }
        if !quiet { StandardError.write(session.summary.render(seconds: progress.elapsedSeconds)) }
    }

    /// Opens the input file, or exits 1 (a usage error) naming it.
    private static func openInput(_ path: String) throws -> Int32 {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw CommandFailure.report("\(path): cannot open: \(String(cString: strerror(errno)))", status: ExitStatus.usage)
        }
        var info = stat()
        if fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            close(descriptor)
            throw CommandFailure.report("\(path): is a directory; expected an NDJSON file", status: ExitStatus.usage)
        }
        return descriptor
    }

    static func parseTime(_ text: String) -> Int64? {
        if let millis = Int64(text) { return millis }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { RFC3339.parseMillis(UnsafeRawBufferPointer($0)) }
    }
}
