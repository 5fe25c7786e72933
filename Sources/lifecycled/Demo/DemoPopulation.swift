import LifecycleEngine

/// The synthetic users of `demo`, one behaviour each, chosen so that every trigger of the
/// reference playbook shows up within a minute of a compressed clock. Users respond to being
/// reached: some of those a trigger reaches do what it asks within a few simulated days,
/// while its control arm (never reached) only behaves as it would anyway, so the playbook's
/// holdouts show a positive uplift.
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

    /// What a reached user may do, and how likely: the trigger's goal, on top of their behaviour.
    enum Response {
        /// Back after going quiet (churn_risk's goal: any event).
        case comeBack
        /// Core actions at last (activation_nudge's goal).
        case activate
        /// A paid plan (upgrade_ready's goal).
        case upgrade
    }

    static let responses: [String: (response: Response, chance: Double)] = [
        "churn_risk": (.comeBack, 0.5), "activation_nudge": (.activate, 0.45), "upgrade_ready": (.upgrade, 0.4),
    ]

    let users: Int
    let start: Int64
    private var random: SplitMix64
    /// Responses still to come: the simulated hour, the user, what they do.
    private var pending: [(hour: Int, user: Int, response: Response)] = []

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

    /// The index in a user id (`demo-42`), nil for another id.
    static func user(_ userID: String) -> Int? {
        userID.hasPrefix("demo-") ? Int(userID.dropFirst("demo-".count)) : nil
    }

    /// `user` was reached by `trigger`: with the trigger's chance, they respond within the
    /// three simulated days after `hour`.
    mutating func reached(_ user: Int, by trigger: String, after hour: Int) {
        guard let (response, chance) = Self.responses[trigger], random.unit() < chance else { return }
        pending.append((hour + 1 + Int(random.next() % 72), user, response))
    }

    /// Appends the events of simulated hour `hour` (since `start`) as (user, name, plan).
    mutating func hour(_ hour: Int, into events: inout [(user: Int, name: String, plan: String?, time: Int64)]) {
        let hourStart = start + Int64(hour) * Millis.hour
        var user = 0
        func emit(_ name: String, plan: String? = nil) {
            events.append((user, name, plan, hourStart + Int64(random.next() % UInt64(Millis.hour))))
        }
        for response in pending where response.hour <= hour {
            user = response.user
            switch response.response {
            case .comeBack: emit("login"); emit("core_action")
            case .activate: for _ in 0..<3 { emit("core_action") }
            case .upgrade: emit("plan_changed", plan: "pro")
            }
        }
        pending.removeAll { $0.hour <= hour }
        for next in 0..<users {
            user = next
            // Users join over the first three days; each is awake 8:00-22:00 of their own day.
            let joinHour = (user * 7) % 72
            guard hour >= joinHour else { continue }
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
