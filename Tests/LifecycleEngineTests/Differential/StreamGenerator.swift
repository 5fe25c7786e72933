import LifecycleEngine

/// One input to both engines.
enum StreamStep: CustomStringConvertible {
    case event(EventRecord)
    /// Stream time moves with no event (`replay --until`, the wall clock of a caught-up partition).
    case advance(to: Int64)

    var description: String {
        switch self {
        case .event(let event):
            let properties = event.properties.keys.sorted().map { "\($0)=\(event.properties[$0]!)" }
            return "event \(event.userID) \(event.name) at \(event.time) \(properties.joined(separator: " "))"
        case .advance(let time): return "advance to \(time)"
        }
    }

    var userID: String? {
        if case .event(let event) = self { return event.userID }
        return nil
    }
}

/// Event streams for generated rules: several users, bursts and quiet gaps long enough for
/// timers to fire, events out of order within and beyond the allowed lateness, times on a
/// coarse grid for some seeds (so events land exactly on deadlines and bucket edges), erase
/// events, and stream time moved without events.
///
/// Stream time runs ahead of the largest event time only until the next event, which comes
/// at or after it: in that state events within the lateness are evaluated at an earlier
/// time than timers already fired, which the semantics leave open.
struct StreamGenerator {
    static let start: Int64 = 1_795_392_000_000  // 2026-11-23T00:00:00Z, a UTC midnight

    static func steps(seed: UInt64, rules: GeneratedRules, events count: Int) -> [StreamStep] {
        var dice = Dice(seed: seed ^ 0x5eed_57ea)
        let m = Millis.minute
        let users = 4 + dice.below(36)
        let grid = dice.pick([1, Millis.second, m])
        let pace = dice.pick([m, 2 * m, 5 * m])
        let lateShare = dice.pick([0.05, 0.15, 0.3])
        let names = RuleGenerator.eventNames + ["noise"]
        var streamTime = start
        var leadNext = true
        var advances = 0
        var steps: [StreamStep] = []
        steps.reserveCapacity(count + count / 100)

        func onGrid(_ time: Int64) -> Int64 { time - time % grid }
        func gap() -> Int64 {
            // Rarer users go quiet for days anyway; the partition itself only now and then.
            let roll = dice.below(1_000)
            let longest = roll < 950 ? pace : roll < 998 ? 2 * Millis.hour : 2 * Millis.day
            return onGrid(dice.below(longest))
        }

        while steps.count - advances < count {
            if dice.chance(0.002) {
                streamTime += gap() + Millis.hour
                steps.append(.advance(to: streamTime))
                advances += 1
                leadNext = true
                continue
            }
            let user = "u\(min(dice.below(users), dice.below(users)))"
            if dice.chance(0.003) {
                // An erasure is honoured whatever its time: often far in the past, sometimes ahead.
                if dice.chance(0.2) {
                    streamTime += gap()
                    leadNext = true
                    steps.append(.event(EventRecord(userID: user, name: RuleGenerator.eraseEvent, time: streamTime)))
                } else {
                    let time = streamTime - dice.below(2 * rules.lateness + Millis.day)
                    steps.append(.event(EventRecord(userID: user, name: RuleGenerator.eraseEvent, time: time)))
                }
                continue
            }
            var time: Int64
            if !leadNext, dice.chance(lateShare) {
                let lag = dice.chance(0.1) ? rules.lateness : dice.below(2 * (rules.lateness + grid))
                time = streamTime - onGrid(lag)
            } else {
                streamTime += gap()
                time = streamTime
                leadNext = false
            }
            steps.append(.event(EventRecord(
                userID: user, name: dice.pick(names), time: time, properties: properties(&dice))))
        }
        steps.append(.advance(to: streamTime + 8 * Millis.day))
        return steps
    }

    private static func properties(_ dice: inout Dice) -> [String: EventRecord.Property] {
        var properties: [String: EventRecord.Property] = [:]
        switch dice.below(10) {
        case 0: properties[GeneratedRules.amountPath] = .string("12")
        case 1: properties[GeneratedRules.amountPath] = .bool(true)
        case 2: break
        default: properties[GeneratedRules.amountPath] = .number(Double(dice.pick(RuleGenerator.priceHundredths)) / 100)
        }
        if dice.chance(0.5) { properties[GeneratedRules.planPath] = .string(dice.pick(RuleGenerator.planValues)) }
        return properties
    }
}
