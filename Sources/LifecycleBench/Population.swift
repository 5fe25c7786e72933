import LifecycleEngine

/// A synthetic user population with a realistic mix of activity: most users are active a
/// few days a month, some are engaged, a few are heavy users; free users hit quotas and
/// look at premium features, some upgrade or buy.
struct Population {
    enum Profile: CaseIterable {
        case occasional, regular, engaged, heavy
        /// Chance of being active on a given day.
        var dailyActivity: Double {
            switch self {
            case .occasional: 0.08
            case .regular: 0.2
            case .engaged: 0.5
            case .heavy: 0.9
            }
        }
    }

    let users: Int
    let start: Int64
    private let seed: UInt64

    init(users: Int, start: Int64, seed: UInt64 = 42) {
        self.users = users
        self.start = start
        self.seed = seed
    }

    func profile(of user: Int) -> Profile {
        switch SplitMix64.mix(UInt64(user) ^ seed &+ 0x9e37_79b9_7f4a_7c15) % 100 {
        case 0..<60: .occasional
        case 60..<85: .regular
        case 85..<97: .engaged
        default: .heavy
        }
    }

    /// One day's events, in time order, as (time, user, event name index).
    func day(_ day: Int, into events: inout [(time: Int64, user: UInt32, name: UInt8)]) {
        events.removeAll(keepingCapacity: true)
        // (offset by one step so the sequence matches the one BENCHMARKS.md was recorded with)
        var rng = SplitMix64(seed: (seed &+ UInt64(day) &* 0x9e37_79b9) &+ 0x9e37_79b9_7f4a_7c15)
        let dayStart = start + Int64(day) * Millis.day
        for user in 0..<users {
            let profile = profile(of: user)
            guard rng.unit() < profile.dailyActivity || (day == 0 && user % 30 == 0) else { continue }
            var time = dayStart + Int64(rng.next() % UInt64(20 * Millis.hour))
            let sessionEvents = 2 + Int(rng.next() % (profile == .heavy ? 12 : 4))
            for index in 0..<sessionEvents {
                let name: UInt8
                if day == 0 && index == 0 && user % 30 == 0 {
                    name = EventNames.signup
                } else if index == 0 {
                    name = EventNames.login
                } else {
                    switch rng.next() % 100 {
                    case 0..<70: name = EventNames.coreAction
                    case 70..<80: name = EventNames.quotaExceeded
                    case 80..<90: name = EventNames.premiumViewed
                    case 90..<95: name = EventNames.purchase
                    case 95..<97: name = EventNames.planChanged
                    default: name = EventNames.other
                    }
                }
                events.append((time, UInt32(user), name))
                time += Int64(rng.next() % UInt64(5 * Millis.minute))
            }
        }
        events.sort { $0.time < $1.time }
    }

}

enum EventNames {
    static let login: UInt8 = 0, coreAction: UInt8 = 1, quotaExceeded: UInt8 = 2, premiumViewed: UInt8 = 3
    static let purchase: UInt8 = 4, planChanged: UInt8 = 5, signup: UInt8 = 6, other: UInt8 = 7
    static let all = ["login", "core_action", "quota_exceeded", "premium_feature_viewed", "purchase", "plan_changed", "signup", "page_view"]
}

/// Writes an event as a JSON line the way producers would send it, without Foundation.
struct EventWriter {
    private let names: [[UInt8]] = EventNames.all.map { Array($0.utf8) }

    func write(time: Int64, user: UInt32, name: UInt8, into buffer: inout [UInt8]) {
        buffer.append(contentsOf: #"{"user_id":"u"#.utf8)
        appendDecimal(Int64(user), &buffer)
        buffer.append(contentsOf: #"","event":""#.utf8)
        buffer.append(contentsOf: names[Int(name)])
        buffer.append(contentsOf: #"","ts":"#.utf8)
        appendDecimal(time, &buffer)
        switch name {
        case EventNames.purchase:
            buffer.append(contentsOf: #","props":{"amount":"#.utf8)
            appendDecimal(Int64(5 + user % 50), &buffer)
            buffer.append(contentsOf: ".5}}".utf8)
        case EventNames.planChanged, EventNames.signup:
            buffer.append(contentsOf: (user % 3 == 0 ? #","props":{"plan":"pro"}}"# : #","props":{"plan":"free"}}"#).utf8)
        default:
            buffer.append(contentsOf: #","props":{"page":"home"}}"#.utf8)
        }
    }

    private func appendDecimal(_ value: Int64, _ buffer: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        var rest = UInt64(value)
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            for index in stride(from: count - 1, through: 0, by: -1) { buffer.append(raw[index]) }
        }
    }
}
