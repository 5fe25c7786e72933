import LifecycleEngine
import Testing

@Suite("Holdouts")
struct HoldoutTests {
    typealias F = Fixture

    /// The playbook with `holdouts` (trigger name → basis points), a global holdout and a salt.
    static func playbook(
        holdouts: [String: Int], global: Int = 0, salt: String = HoldoutRule.defaultSalt,
        edit: (inout Rules) -> Void = { _ in }
    ) throws -> CompiledRules {
        var rules = try F.playbook().rules
        for index in rules.triggers.indices {
            rules.triggers[index].holdout = holdouts[rules.triggers[index].name].map { Located($0) }
        }
        rules.holdout = HoldoutRule(global: Located(global), salt: salt)
        edit(&rules)
        return try CompiledRules(rules)
    }

    static func trigger(_ rules: CompiledRules, _ name: String) -> Int { rules.triggerNames.firstIndex(of: name)! }

    static func users(_ count: Int) -> [String] { (0..<count).map { "user-\($0)" } }

    /// Users in the control arm of `name`.
    static func control(_ rules: CompiledRules, _ name: String, _ users: [String]) -> Set<String> {
        let index = trigger(rules, name)
        return Set(users.filter { rules.arm(ofTrigger: index, userID: $0.utf8) == .control })
    }

    @Test("the same user gets the same arm from separately compiled rules and engines, and after rule edits that keep the salt and the share")
    func stableAssignment() throws {
        let users = Self.users(20_000)
        let base = try Self.playbook(holdouts: ["churn_risk": 1_000])
        let again = try Self.playbook(holdouts: ["churn_risk": 1_000])
        let edited = try Self.playbook(holdouts: ["churn_risk": 1_000, "win_back": 2_500]) { rules in
            rules.version = "another-version"
            rules.triggers.reverse()
            rules.triggers[0].cooldown += F.day
            rules.triggers.append(TriggerRule(name: "new_one", fire: .when(Located("core_actions_7d >= 9"))))
            rules.lifecycle.transitions[0] = F.transition(["new"], "activated", when: "core_actions_7d >= 4")
        }
        let control = Self.control(base, "churn_risk", users)
        #expect(control == Self.control(again, "churn_risk", users))
        #expect(control == Self.control(edited, "churn_risk", users))
        let reshuffled = Self.control(try Self.playbook(holdouts: ["churn_risk": 1_000], salt: "other"), "churn_risk", users)
        #expect(reshuffled != control, "a new salt is a new draw")
        // Each trigger draws on its own: another trigger's control arm is not this one's.
        #expect(Self.control(edited, "win_back", users).intersection(control).count < control.count / 2)
    }

    @Test("raising a percentage only adds users to the control arm")
    func raisingOnlyAdds() throws {
        let users = Self.users(50_000)
        var previous: Set<String> = []
        for share in [0, 1, 500, 1_000, 2_550, 5_000] {
            let control = Self.control(try Self.playbook(holdouts: ["churn_risk": share]), "churn_risk", users)
            #expect(previous.isSubset(of: control), "\(share) basis points")
            #expect(control.count > previous.count || share == 0)
            previous = control
        }
        var globalBefore: Set<String> = []
        for global in [100, 500, 1_500] {
            let control = Self.control(try Self.playbook(holdouts: ["churn_risk": 1_000], global: global), "churn_risk", users)
            #expect(globalBefore.isSubset(of: control), "global \(global) basis points")
            globalBefore = control
        }
    }

    @Test("over 1M users each arm's share is within 0.3 points of its percentage",
          arguments: [(1, 0), (500, 0), (1_000, 0), (3_333, 0), (5_000, 0), (0, 500), (1_000, 500)])
    func shares(trigger share: Int, global: Int) throws {
        let rules = try Self.playbook(holdouts: ["upgrade_ready": share], global: global)
        let index = Self.trigger(rules, "upgrade_ready")
        let users = 1_000_000
        var held = 0
        for user in 0..<users where rules.arm(ofTrigger: index, userID: "u\(user)".utf8) == .control { held += 1 }
        let expected = rules.controlShare(ofTrigger: index) * 100
        let controlPoints = Double(held) / Double(users) * 100
        #expect(abs(controlPoints - expected) <= 0.3, "control \(controlPoints) % for \(expected) %")
        #expect(abs((100 - controlPoints) - (100 - expected)) <= 0.3, "treatment")
    }

    @Test("a held-out user's trigger is evaluated exactly like any other: same triggers, ids and cooldowns, only the arm differs")
    func controlEvaluatedAlike() throws {
        let events = DeterminismTests.stream(seed: 5, users: 60, count: 4_000)
        var plain = Harness(try F.playbook())
        var split = Harness(try Self.playbook(holdouts: ["churn_risk": 5_000, "upgrade_ready": 5_000, "power_user": 2_000]))
        for event in events {
            plain.engine.ingest(event, into: &plain.output)
            split.engine.ingest(event, into: &split.output)
        }
        plain.advance(to: F.t0 + 120 * F.day)
        split.advance(to: F.t0 + 120 * F.day)

        #expect(plain.triggers.count > 100)
        #expect(plain.triggers.allSatisfy { $0.arm == nil })
        #expect(split.triggers.map { var copy = $0; copy.arm = nil; return copy } == plain.triggers)
        #expect(split.output.conversions.map { var copy = $0; copy.arm = nil; return copy } == plain.output.conversions)
        #expect(split.engine.stats.suppressedByCooldown == plain.engine.stats.suppressedByCooldown)
        let arms = Dictionary(grouping: split.triggers, by: \.name).mapValues { Set($0.map(\.arm)) }
        #expect(arms["churn_risk"] == [.treatment, .control])
        #expect(arms["win_back"] == [nil], "a trigger without a holdout has no arm")
        // Every firing's arm is the user's assignment.
        for trigger in split.triggers {
            #expect(trigger.arm == split.engine.rules.arm(ofTrigger: Self.trigger(split.engine.rules, trigger.name), userID: trigger.userID.utf8))
        }
    }

    @Test("conversions count in both arms with the same window; the per-arm totals add up what was emitted")
    func conversionsPerArm() throws {
        let rules = try Self.playbook(holdouts: ["churn_risk": 5_000])
        let churn = Self.trigger(rules, "churn_risk")
        let users = Self.users(200)
        let control = Self.control(rules, "churn_risk", users)
        let (heldOut, reached) = (users.first { control.contains($0) }!, users.first { !control.contains($0) }!)
        var h = Harness(rules)
        for user in [heldOut, reached] {
            for minute in 0..<4 { h.send(user, "core_action", at: F.t0 + Int64(minute) * F.minute) }
        }
        // Both at risk 7 days later; the held-out user comes back within the goal's 7 days,
        // the reached one a day after it closed.
        h.send(heldOut, "login", at: F.t0 + 13 * F.day)
        h.send(reached, "login", at: F.t0 + 15 * F.day)
        let fired = h.fired("churn_risk")
        #expect(fired.map(\.userID).sorted() == [heldOut, reached].sorted())
        #expect(Set(fired.map { $0.userID + ":" + ($0.arm?.rawValue ?? "") }) == ["\(heldOut):control", "\(reached):treatment"])
        #expect(h.output.conversions.map(\.userID) == [heldOut])
        #expect(h.output.conversions.first?.arm == .control)
        let totals = h.engine.armTotals[churn]
        #expect(totals == ArmTotals(treatment: ArmCount(fired: 1, converted: 0), control: ArmCount(fired: 1, converted: 1)))
        // Triggers without a holdout count as treatment: everyone was reached.
        let winBack = h.engine.armTotals[Self.trigger(rules, "win_back")]
        #expect(winBack.treatment.fired == 2 && winBack.control == ArmCount())
    }

    @Test("the per-arm totals survive a snapshot; snapshots of older formats are refused as outdated")
    func totalsInSnapshots() throws {
        let rules = try Self.playbook(holdouts: ["churn_risk": 5_000, "upgrade_ready": 5_000])
        var h = Harness(rules)
        for event in DeterminismTests.stream(seed: 9, users: 40, count: 3_000) { h.engine.ingest(event, into: &h.output) }
        #expect(h.engine.armTotals.reduce(0) { $0 + $1.control.fired } > 0)
        let bytes = h.engine.snapshot()
        let restored = try PartitionEngine(rules: rules, snapshot: bytes)
        #expect(restored.armTotals == h.engine.armTotals)

        for version: UInt8 in [1, 2, 4] {
            var other = bytes
            other.replaceSubrange(8..<12, with: [version, 0, 0, 0])
            let error = #expect(throws: SnapshotError.self) { try PartitionEngine(rules: rules, snapshot: other) }
            #expect(error?.isOutdatedFormat == (version < 3))
        }
    }

    @Test("holdouts outside 0 % to 50 % are refused, naming the trigger or the global holdout")
    func range() throws {
        #expect(throws: RuleErrors.self) { try Self.playbook(holdouts: ["churn_risk": 5_001]) }
        do {
            _ = try Self.playbook(holdouts: ["churn_risk": 6_000], global: -1)
            Issue.record("expected errors")
        } catch let error as RuleErrors {
            let messages = error.errors.map(\.message)
            #expect(messages.contains("trigger 'churn_risk' holdout is 60%; expected 0% to 50%"), "\(messages)")
            #expect(messages.contains { $0.hasPrefix("holdout.global is -0.01%") }, "\(messages)")
        }
        #expect(HoldoutRule.percentText(1_250) == "12.5%" && HoldoutRule.percentText(1) == "0.01%" && HoldoutRule.percentText(1_000) == "10%")
    }
}
