import LifecycleCodec
import LifecycleConfig
import LifecycleEngine
import LifecycleKafka

/// One assigned partition's processing: its engine, event decoder, output buffer, next offset
/// and phase. Owned by one thread at a time: built where its state is restored, handed to
/// the worker that consumes the partition, and dropped once its final checkpoint is taken.
///
/// Partitions share nothing, which is what lets them run on different cores: a task only
/// writes to its worker's `PartitionOutput`.
final class PartitionTask: @unchecked Sendable {
    enum Phase: String, Sendable {
        /// Its state is being read; its messages wait in a queue of their own.
        case restoring
        /// Consuming a backlog: stream time follows the events only, so a restart never fires
        /// timers early.
        case catchingUp = "catching up"
        /// Read to the end of the partition: stream time also follows the wall clock, so a
        /// quiet partition's timers fire.
        case live
        /// Its final checkpoint is being taken; nothing more is consumed.
        case revoking
    }

    let partition: TopicPartition
    private(set) var phase = Phase.restoring
    private(set) var engine: PartitionEngine
    private var decoder: EventDecoder
    private var output = EngineOutput()
    /// The offset of the next message to read (what a checkpoint records); -1 before any.
    private(set) var nextOffset: Int64
    /// The state's version at the last snapshot: a partition unchanged since is not saved again.
    private var snapshotVersion: StateVersion?
    /// Its changelog topic (as `PartitionOutput` numbers them), if state moves through one.
    let changelog: Int?
    /// Where a restore reads the changelog on from to bring the last snapshot up to date.
    private(set) var changelogPosition: Int64?

    struct StateVersion: Equatable {
        var nextOffset: Int64
        var timersDue: Int
    }

    /// The Kafka cluster's id, recorded in its checkpoints (nil: unknown).
    private let clusterID: String?

    init(
        partition: TopicPartition, engine: PartitionEngine, nextOffset: Int64, changelog: Int?, changelogPosition: Int64?,
        clusterID: String?
    ) {
        self.partition = partition
        self.clusterID = clusterID
        self.engine = engine
        self.nextOffset = nextOffset
        self.changelog = changelog
        self.changelogPosition = changelogPosition
        if changelog != nil { self.engine.trackChanges() }
        decoder = Self.decoder(for: engine.rules)
        // What was restored is what the checkpoint holds already.
        snapshotVersion = nextOffset >= 0 ? version : nil
    }

    /// Handed to its worker: it consumes from now on.
    func start() { phase = .catchingUp }

    /// The partition had no backlog left at some point since it was assigned.
    func reachedEnd() {
        if phase == .catchingUp { phase = .live }
    }

    func beginRevoking() { phase = .revoking }

    /// Applies one message: decoded and ingested, or sent to the dead-letter topic with the
    /// reason; triggers and conversions go to `out`. `wallClock` (epoch ms) bounds how far
    /// ahead an event may be (`events.max_future`): one producer's wrong clock must not move
    /// the partition's stream time years ahead and fire every timer.
    func consume(_ message: KafkaMessage, wallClock: Int64, into out: PartitionOutput) throws {
        nextOffset = message.offset + 1
        out.eventConsumed(message, of: partition)
        let consumedAt = MonotonicClock.microseconds()
        var outcome = IngestOutcome.applied
        let rejection = decoder.decode(message.value, fallbackTime: message.timestamp) { event in
            if !message.key.isEmpty, !message.key.elementsEqual(event.userID) { out.counters.keyMismatches += 1 }
            outcome = engine.ingest(event, into: &output, notAfter: engine.futureLimit(from: wallClock))
        }
        if let rejection {
            try out.deadLetter(message, reason: rejection.rawValue)
        } else if outcome == .late {
            out.counters.eventsLate += 1
        } else if outcome == .outOfRange || outcome == .tooFarAhead {
            try out.deadLetter(message, reason: "bad_time")
        } else if outcome == .invalidUser {
            try out.deadLetter(message, reason: "bad_user_id")
        }
        if !output.triggers.isEmpty || !output.conversions.isEmpty { try out.emit(&output, rules: engine.rules, consumedAt: consumedAt) }
    }

    /// Moves stream time to `time` (a live partition following the wall clock); timers due
    /// by then fire.
    func advance(to time: Int64, into out: PartitionOutput) throws {
        engine.advance(to: time, into: &output)
        if !output.triggers.isEmpty || !output.conversions.isEmpty { try out.emit(&output, rules: engine.rules, consumedAt: 0) }
    }

    /// Whether the state changed since the last snapshot (and has consumed anything at all).
    var needsSnapshot: Bool { nextOffset >= 0 && snapshotVersion != version }

    /// Appends a checkpoint of the current state (under the rules it runs) to `writer` and
    /// remembers its version; with a changelog, also cuts the cycle's changelog records at the
    /// same instant, which `writeChangelog` then produces. The checkpoint is published only
    /// once Kafka has acknowledged them (the caller's `publishAt`).
    func snapshot(into writer: inout SnapshotWriter, out: PartitionOutput) {
        if changelog != nil {
            // Records acknowledged so far are in this state; a restore reads on from there.
            changelogPosition = out.changelogEnd(changelog!, partition: partition.partition) ?? changelogPosition
            engine.beginChangelogCut(nextOffset: nextOffset)
        }
        let header = CheckpointHeader(
            nextOffset: nextOffset, changelogPosition: changelogPosition, configVersion: engine.rules.configVersion,
            topic: partition.topic, partition: partition.partition, clusterID: clusterID)
        CheckpointStore.encode(header, into: &writer) { engine.snapshot(into: &$0) }
        snapshotVersion = version
    }

    /// Produces up to `maxRecords` more of the last cut's changelog records; true once all
    /// are produced (or there is no changelog).
    func writeChangelog(maxRecords: Int, out: PartitionOutput) throws -> Bool {
        guard let changelog else { return true }
        return try engine.continueChangelogCut(maxRecords: maxRecords) { key, value in
            try out.writeChangelog(changelog, partition: partition.partition, key: key, value: value)
        }
    }

    /// Runs under new rules from now on, its state kept in place (checkpointed just before,
    /// under the running rules). When that re-timed the timers, every user's record changed,
    /// so the next cycle writes each to the changelog again.
    func replaceRules(with rules: CompiledRules) throws(StateShapeChanged) {
        if try engine.replaceRules(with: rules) { engine.markAllChanged() }
        decoder = Self.decoder(for: rules)
    }

    private static func decoder(for rules: CompiledRules) -> EventDecoder {
        EventDecoder(fields: rules.rules.events, propertyPaths: rules.propertyPaths)
    }

    /// A sizeable overestimate of a snapshot's bytes, to prepare a buffer that holds it.
    var snapshotCapacity: Int { engine.allocatedBytes + engine.allocatedBytes / 8 + 4096 }

    private var version: StateVersion { StateVersion(nextOffset: nextOffset, timersDue: engine.stats.timersDue) }
}
