import Glibc
import LifecycleCodec
import LifecycleEngine

/// Offline replay: NDJSON events through the engine, NDJSON triggers out, a summary at the end.
/// Deterministic: the only inputs are the rules, the lines and `--until`.
struct ReplaySession: ~Copyable {
    private var engine: PartitionEngine
    private var decoder: EventDecoder
    private var encoder = TriggerEncoder()
    private var output = EngineOutput()
    private var stdout = OutputWriter(descriptor: STDOUT_FILENO, name: "standard output")
    private(set) var summary: ReplaySummary
    private let progress: ProgressReporter
    /// How far ahead of stream time an event may be (`--max-future`).
    private let maxFuture: Int64

    init(rules: CompiledRules, maxFuture: Int64, progress: ProgressReporter) {
        engine = PartitionEngine(rules: rules)
        decoder = EventDecoder(fields: rules.rules.events, propertyPaths: rules.propertyPaths)
        summary = ReplaySummary(rules: rules)
        self.progress = progress
        self.maxFuture = maxFuture
    }

    mutating func run(_ reader: inout LineReader, until: Int64?) throws {
        try reader.forEachLine { read, number in
            summary.linesRead += 1
            guard case .text(let line) = read else {
                summary.reject(.tooLarge, line: number)
                return
            }
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) {
                summary.blankLines += 1
                return
            }
            if let rejection = decoder.decode(line, fallbackTime: nil, { event in
                let outcome = engine.ingest(event, into: &output, notAfter: engine.futureLimit(from: engine.streamTime, ahead: maxFuture))
                summary.record(outcome, line: number)
            }) {
                summary.reject(rejection, line: number)
            }
            if !output.triggers.isEmpty || !output.conversions.isEmpty { try drain() }
            if summary.linesRead & 0xFFFF == 0 { progress.report(linesRead: summary.linesRead, users: engine.userCount) }
        }
        if let until { engine.advance(to: until, into: &output) }
        try drain()
        try stdout.flush()
        summary.finish(engine)
    }

    private mutating func drain() throws {
        for trigger in output.triggers {
            try stdout.append { buffer in
                encoder.encode(trigger, into: &buffer)
                buffer.append(UInt8(ascii: "\n"))
            }
        }
        output.removeAll()
    }
}
