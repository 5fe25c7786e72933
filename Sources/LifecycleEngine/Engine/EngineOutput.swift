/// What one engine call produced; the caller drains it.
///
/// A trigger is recorded as plain values (`FiredTrigger`): its user id and evidence are
/// copied into buffers kept across calls, and its names, reason and stages stay in the rules
/// that fired it. So firing a trigger allocates nothing once the buffers have grown, and the
/// encoder writes it straight from here and from the rules.
public struct EngineOutput: Sendable {
    public internal(set) var triggers: [FiredTrigger] = []
    public var conversions: [Conversion] = []
    /// The triggers' user ids and text evidence, back to back.
    private var bytes: [UInt8] = []
    /// The triggers' evidence values, back to back.
    private var evidenceValues: [EvidenceValue] = []

    public init() {}

    public mutating func removeAll() {
        triggers.removeAll(keepingCapacity: true)
        conversions.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
        evidenceValues.removeAll(keepingCapacity: true)
    }

    /// The trigger's user id (UTF-8).
    public func userID(of trigger: FiredTrigger) -> ArraySlice<UInt8> { bytes[trigger.userIDRange] }

    /// The trigger's evidence values, named by `CompiledRules.evidenceNames(of:)`.
    public func evidence(of trigger: FiredTrigger) -> ArraySlice<EvidenceValue> { evidenceValues[trigger.evidenceRange] }

    /// The UTF-8 bytes of a `.text` evidence value.
    public func text(_ range: Range<Int>) -> ArraySlice<UInt8> { bytes[range] }

    // MARK: - Recording (the engine)

    mutating func appendBytes(_ source: some Collection<UInt8>) -> Range<Int> {
        let start = bytes.count
        bytes.append(contentsOf: source)
        return start..<bytes.count
    }

    var evidenceCount: Int { evidenceValues.count }

    mutating func appendEvidence(_ value: EvidenceValue) { evidenceValues.append(value) }
}

/// A fired trigger as the engine records it. Read it with the rules of the engine that
/// fired it and the `EngineOutput` that holds it (`TriggerEncoder`, or `Trigger(_:in:rules:)`
/// for owned values).
public struct FiredTrigger: Sendable {
    /// Indexes `CompiledRules.triggerNames`.
    public let trigger: Int
    public let id: TriggerID
    /// Stream (event) time; for a timer, its deadline.
    public let firedAt: Int64
    /// As for `Trigger.arm`.
    public let arm: Arm?
    /// The item of `CompiledRules.transitionsFrom` that fired an `on_enter` trigger; nil for a condition trigger.
    let transition: Int?

    /// The trigger and the transition that fired it, as one number: the rules decide the same
    /// name, reason and evidence names for every firing of one form.
    public var form: UInt64 { UInt64(trigger) | UInt64(transition.map { $0 + 1 } ?? 0) << 32 }
    /// Where its user id and evidence values are in its output's buffers.
    let userIDRange: Range<Int>
    let evidenceRange: Range<Int>
}

public enum EvidenceValue: Sendable {
    case integer(Int64)
    case number(Double)
    /// Bytes in the output (`EngineOutput.text(_:)`).
    case text(Range<Int>)
}

extension CompiledRules {
    /// The stage change that fired an `on_enter` trigger; nil for a condition trigger.
    public func stageChange(of trigger: FiredTrigger) -> StageChange? {
        guard let item = trigger.transition else { return nil }
        let transition = transitionsFrom[item: item]
        return StageChange(from: stageNames[Int(transition.from)], to: stageNames[Int(transition.to)])
    }

    /// The rule's reason, or for an `on_enter` trigger without one, the transition's.
    public func reason(of trigger: FiredTrigger) -> String {
        let rule = triggers[trigger.trigger]
        if rule.reasonFromTransition, let item = trigger.transition { return transitionsFrom[item: item].reason }
        return rule.reason
    }

    /// The names of the trigger's evidence values, in their order.
    public func evidenceNames(of trigger: FiredTrigger) -> [String] {
        evidence(ofTrigger: trigger.trigger, transition: trigger.transition).names
    }

    /// What a trigger fired by `transition` (nil: by its condition) reports.
    func evidence(ofTrigger trigger: Int, transition: Int?) -> EvidenceList {
        transition.map { transitionsFrom[item: $0].evidence } ?? triggers[trigger].evidence
    }
}
