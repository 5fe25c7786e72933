import LifecycleEngine

/// The synthetic users of `demo`, one behaviour each, chosen so that every trigger of the
/// reference playbook shows up within a minute of a compressed clock.
struct DemoPopulation {
    enum Behaviour: CaseIterable {
        /// Active most days with a few core actions: activated, then engaged.
        case engaged
        /// A dozen core actions a day: power users.
        case power
        /// Active for a few days, then silent for good: at risk, then dormant.
        case fading
        /// Active, silent for ten days, then back: at risk, then reactivated.
        case returning
        /// Free users hitting quotas and viewing premium features; some upgrade.
        case limited
        /// Sign up and never do the core action: nudged, then dormant.
        case neverActivated
    }

    let users: Int
    let start: Int64
    private var random: SplitMix64

    init(users: Int, start: Int64, seed: UInt64 = 7) {
        self.users = users
        self.start = start
        random = SplitMix64(seed: seed)
    }

    func behaviour(of user: Int) -> Behaviour {
        switch user % 20 {
        case 0..<6: .engaged
        case 6: .power
        case 7..<10: .fading
        case 10..<13: .returning
        case 13..<16: .limited
        default: .neverActivated
        }
    }

    /// Appends the events of simulated hour `hour` (since `start`) as (user, name, plan).
    mutating func hour(_ hour: Int, into events: inout [(user: Int, name: String, plan: String?, time: Int64)]) {
        let hourStart = start + Int64(hour) * Millis.hour
        for user in 0..<users {
            // Users join over the first three days; each is awake 8:00-22:00 of their own day.
            let joinHour = (user * 7) % 72
            guard hour >= joinHour else { continue }
            func emit(_ name: String, plan: String? = nil) {
                events.append((user, name, plan, hourStart + Int64(random.next() % UInt64(Millis.hour))))
            }
            if hour == joinHour {
                emit("signup", plan: "free")
                continue
            }
            let localHour = (hour - joinHour) % 24
            guard localHour >= 8 && localHour < 22 else { continue }
            let daysIn = (hour - joinHour) / 24
            let roll = random.unit()
            switch behaviour(of: user) {
            case .engaged:
                if roll < 0.12 { emit("login"); emit("core_action") }
            case .power:
                if roll < 0.8 { emit("core_action"); emit("core_action") }
            case .fading:
                if daysIn < 4 && roll < 0.15 { emit("login"); emit("core_action") }
            case .returning:
                if (daysIn < 3 || daysIn >= 16) && roll < 0.15 { emit("login"); emit("core_action") }
            case .limited:
                if roll < 0.1 { emit("login"); emit("quota_exceeded"); emit("premium_feature_viewed") }
                if user % 2 == 0 && daysIn == 6 && localHour == 12 { emit("plan_changed", plan: "pro") }
                if user % 2 == 0 && daysIn > 6 && roll < 0.05 { emit("purchase") }
            case .neverActivated:
                if daysIn == 0 && roll < 0.1 { emit("page_view") }
            }
        }
    }
}
