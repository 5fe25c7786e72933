import LifecycleCodec
import LifecycleEngine

/// Offline replay of one rule set: NDJSON lines through an engine, with what each line caused
/// handed to the caller (`replay` prints triggers, `diff` records them), and a summary.
/// Deterministic: the only inputs are the rules, the lines and `--until`.
struct ReplaySession: ~Copyable {
    private var engine: PartitionEngine
    private var decoder: EventDecoder
    private var output = EngineOutput()
    private(set) var summary: ReplaySummary
    /// How far ahead of stream time an event may be (`--max-future`).
    private let maxFuture: Int64

    init(rules: CompiledRules, maxFuture: Int64) {
        engine = PartitionEngine(rules: rules)
        decoder = EventDecoder(fields: rules.rules.events, propertyPaths: rules.propertyPaths)
        summary = ReplaySummary(rules: rules)
        self.maxFuture = maxFuture
    }

    var userCount: Int { engine.userCount }
    var streamTime: Int64 { engine.streamTime }

    /// Writes what alerts are evaluated on into `sample` (sized for the rules): the engine's
    /// users and trigger totals, and the lines read as events (valid or not, as `run` counts
    /// events consumed). Replay has no lag. Element by element, in place: no array is built
    /// per sample, and the engine's arrays are never shared (its next update would copy them).
    func updateAlertSample(_ sample: inout AlertSample) {
        for stage in sample.usersPerStage.indices { sample.usersPerStage[stage] = engine.usersPerStage[stage] }
        for trigger in sample.fired.indices {
            sample.fired[trigger] = engine.armTotals[trigger].fired
            sample.converted[trigger] = engine.armTotals[trigger].converted
        }
        sample.events = summary.linesRead - summary.blankLines
    }

    /// One input line, decoded and ingested or counted as rejected; `emit` gets the triggers
    /// and conversions it caused (then they are dropped).
    mutating func feed(_ read: LineReader.Line, number: Int, emit: (borrowing EngineOutput) throws -> Void) rethrows {
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
        try drain(emit)
    }

    /// After the last line: moves stream time to `until` (timers due by then fire, to `emit`)
    /// and completes the summary.
    mutating func finish(until: Int64?, emit: (borrowing EngineOutput) throws -> Void) rethrows {
        if let until { try advance(to: until, emit: emit) }
        summary.finish(engine)
    }

    /// Moves stream time to `time`: timers due by then fire, to `emit`.
    mutating func advance(to time: Int64, emit: (borrowing EngineOutput) throws -> Void) rethrows {
        engine.advance(to: time, into: &output)
        try drain(emit)
    }

    private mutating func drain(_ emit: (borrowing EngineOutput) throws -> Void) rethrows {
        guard !output.triggers.isEmpty || !output.conversions.isEmpty else { return }
        try emit(output)
        output.removeAll()
    }
}
