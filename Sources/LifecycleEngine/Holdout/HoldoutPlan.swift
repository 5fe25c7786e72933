/// Which arm a user is in for a trigger: a stable hash of (salt, trigger, user id) put in one
/// of 10,000 buckets, held out when the bucket is below the trigger's share (in basis
/// points, 0.01 %); and of (salt, user id) for the global holdout, which holds a user out of
/// every trigger. Nothing is stored, so `replay` and every instance of `run` agree, and a
/// larger share only adds buckets: raising a percentage moves users from treatment to
/// control, never back. Rule edits that keep the salt and the share keep every assignment.
struct HoldoutPlan: Sendable {
    static let buckets: UInt64 = 10_000

    private struct Draw: Sendable {
        /// The hash state after the salt (and the trigger name), so a firing hashes only the user id.
        var seed: StableHash
        var share: Int
    }

    private let triggers: [Draw?]
    private let global: Draw?

    /// `shares`: each trigger's holdout in basis points (0: none); `global` likewise.
    init(salt: String, triggerNames: [String], shares: [Int], global: Int) {
        var saltOnly = StableHash()
        saltOnly.combine(salt)
        self.global = global > 0 ? Draw(seed: saltOnly, share: global) : nil
        triggers = zip(triggerNames, shares).map { name, share in
            guard share > 0 || global > 0 else { return nil }
            var seed = saltOnly
            seed.combine(name)
            return Draw(seed: seed, share: share)
        }
    }

    /// The user's arm for `trigger`; nil for a trigger without a holdout (everyone is reached).
    func arm(_ trigger: Int, userID: some Sequence<UInt8>) -> Arm? {
        guard let draw = triggers[trigger] else { return nil }
        if let global, Self.isHeldOut(global, userID) { return .control }
        return Self.isHeldOut(draw, userID) ? .control : .treatment
    }

    func hasHoldout(_ trigger: Int) -> Bool { triggers[trigger] != nil }

    private static func isHeldOut(_ draw: Draw, _ userID: some Sequence<UInt8>) -> Bool {
        guard draw.share > 0 else { return false }
        var hash = draw.seed
        hash.combine(userID)
        return hash.value64 % buckets < UInt64(draw.share)
    }
}
