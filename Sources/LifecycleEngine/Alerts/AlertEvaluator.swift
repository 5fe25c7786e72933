/// Evaluates alerts on samples of the instance's aggregate, at times the caller passes in
/// (the wall clock in `run`, stream time in `replay`, any clock in tests): no I/O, no clock.
///
/// Each level (warn, critical) holds while the measure passes its threshold. A level fires
/// once it has held for `for`, and stops firing once it has not held for `keep_firing_for`.
/// The alert is firing at its highest firing level, pending while a level holds without
/// firing yet, else ok. Crossing critical implies crossing warn (warn is reached first), so
/// warn fires whenever critical does and stops no earlier.
///
/// A sample below the alert's minimum volume, or without a value (a window not yet covered,
/// no users, a rate without firings, lag unknown), is not evaluated: no level holds there. So
/// a pending alert goes back to ok, and a firing one resolves after `keep_firing_for` unless
/// a sample shows it holding again, exactly as if its condition had stopped holding.
public struct AlertEvaluator: Sendable {
    /// The alerts in order, each with its state.
    private var tracks: [AlertTrack]
    private var histories: [SampleHistory]
    /// Each alert's history (an index into `histories`); nil for measures without a window.
    private let historyOfAlert: [Int?]
    private var lastTime = Int64.min

    /// - Parameter previous: the evaluator of the rules before a reload, whose samples mean
    ///   the same (same stages and triggers, in the same order): its history is kept, and so
    ///   is the state of every alert whose definition did not change.
    public init(_ alerts: [CompiledAlert], continuing previous: AlertEvaluator? = nil) {
        var histories: [SampleHistory] = []
        historyOfAlert = alerts.map { alert in
            guard let window = alert.measure.window else { return nil }
            if let index = histories.firstIndex(where: { $0.window == window }) { return index }
            histories.append(previous?.histories.first { $0.window == window } ?? SampleHistory(window: window))
            return histories.count - 1
        }
        self.histories = histories
        tracks = alerts.map { alert in previous?.tracks.first { $0.alert == alert } ?? AlertTrack(alert) }
        lastTime = previous?.lastTime ?? .min
    }

    /// Evaluates every alert on `sample`, taken at `time`; returns the changes of state, in
    /// the order of the alerts. A time before the last one (a clock stepping back) is ignored.
    /// Replay calls this for nearly every event, so the loop reads the alerts, histories and
    /// tracks in place rather than copying them (a copy of an alert retains its strings).
    public mutating func evaluate(_ sample: borrowing AlertSample, at time: Int64) -> [AlertChange] {
        guard time >= lastTime else { return [] }
        lastTime = time
        for index in histories.indices { histories[index].record(sample, at: time) }
        var changes: [AlertChange] = []
        for index in tracks.indices {
            let reading = read(tracks[index].alert, history: historyOfAlert[index], sample, at: time)
            tracks[index].update(reading, at: time, into: &changes)
        }
        return changes
    }

    /// The alerts, in order.
    public var alerts: [CompiledAlert] { tracks.map(\.alert) }
    public var isEmpty: Bool { tracks.isEmpty }

    /// Every alert's state as of the last sample.
    public var statuses: [AlertStatus] {
        tracks.map { track in
            let alert = track.alert
            return AlertStatus(
                name: alert.name, when: alert.when, state: track.state, level: track.level, value: track.value,
                threshold: track.level.flatMap { alert.threshold(of: $0)?.value }, warn: alert.warn, critical: alert.critical,
                since: track.since, reason: track.skipped?.reason)
        }
    }

    /// Alerts that never get a value here: `lag`, in replay.
    public var lagAlerts: [String] { tracks.filter { $0.alert.measure == .lag }.map(\.alert.name) }

    private func read(
        _ alert: borrowing CompiledAlert, history: Int?, _ sample: borrowing AlertSample, at time: Int64
    ) -> Result<Double, AlertSkipped> {
        let users = sample.users
        guard users >= alert.minUsers else { return .failure(.belowMinUsers(users: users, minUsers: alert.minUsers)) }
        guard let history else { return alert.measure.value(sample, since: sample) }
        return histories[history].read(alert, sample, at: time)
    }
}

public enum AlertState: String, Sendable {
    case ok, pending, firing
}

public enum AlertLevel: String, Sendable {
    case warn, critical
}

extension CompiledAlert {
    public func threshold(of level: AlertLevel) -> AlertThreshold? { level == .critical ? critical : warn }
}

/// An alert as `/v1/alerts` shows it.
public struct AlertStatus: Sendable, Equatable {
    public var name: String
    public var when: String
    public var state: AlertState
    /// The firing level, or the level that holds while pending; nil when ok.
    public var level: AlertLevel?
    /// The measure at the last sample; nil when it was not evaluated (`reason` says why).
    public var value: Double?
    /// The threshold of `level`.
    public var threshold: Double?
    public var warn: AlertThreshold?
    public var critical: AlertThreshold?
    /// When the current episode began (the condition first held); nil when ok.
    public var since: Int64?
    public var reason: String?
}

/// A change of an alert's state: what goes to the alerts topic, the log and replay's output.
public struct AlertChange: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A level holds, not yet for `for`.
        case pending
        /// Fires, or changes level while firing.
        case firing
        /// Stopped firing: no level held for `keep_firing_for`.
        case resolved
        /// A pending alert whose condition stopped holding before it fired.
        case ok
    }

    public var alert: String
    public var state: Kind
    /// The level held (pending) or firing; nil for resolved and ok.
    public var level: AlertLevel?
    public var value: Double?
    public var threshold: Double?
    /// When the episode began: the sample at which a level first held.
    public var since: Int64
    /// When the change happened (the sample's time).
    public var at: Int64
    /// Why the sample was not evaluated, if it was not.
    public var reason: String?

    public init(
        alert: String, state: Kind, level: AlertLevel?, value: Double?, threshold: Double?, since: Int64, at: Int64, reason: String?
    ) {
        self.alert = alert
        self.state = state
        self.level = level
        self.value = value
        self.threshold = threshold
        self.since = since
        self.at = at
        self.reason = reason
    }
}

/// One level's timing: how long it has held, and whether it fires.
struct LevelClock: Sendable, Equatable {
    private var holdsSince: Int64?
    /// While firing: since when the level has not held.
    private var clearSince: Int64?
    private(set) var firing = false

    mutating func update(holds: Bool, at time: Int64, holdFor: Int64, keepFiringFor: Int64) {
        if holds {
            let since = holdsSince ?? time
            holdsSince = since
            clearSince = nil
            if time - since >= holdFor { firing = true }
        } else {
            holdsSince = nil
            guard firing else { return }
            let since = clearSince ?? time
            clearSince = since
            if time - since >= keepFiringFor {
                firing = false
                clearSince = nil
            }
        }
    }
}

/// One alert and its state between samples. The alert is kept here so that `update` reads
/// it in place: passed as an argument from an array, it would be copied at every sample.
struct AlertTrack: Sendable, Equatable {
    let alert: CompiledAlert
    var warn = LevelClock()
    var critical = LevelClock()
    var state = AlertState.ok
    var level: AlertLevel?
    var since: Int64?
    var value: Double?
    /// Why the last sample was not evaluated; formatted only when shown.
    var skipped: AlertSkipped?

    init(_ alert: CompiledAlert) { self.alert = alert }

    mutating func update(
        _ reading: Result<Double, AlertSkipped>, at time: Int64, into changes: inout [AlertChange]
    ) {
        switch reading {
        case .success(let measured): (value, skipped) = (measured, nil)
        case .failure(let reason): (value, skipped) = (nil, reason)
        }
        let holdsWarn = Self.holds(alert.warn, value), holdsCritical = Self.holds(alert.critical, value)
        warn.update(holds: holdsWarn, at: time, holdFor: alert.holdFor, keepFiringFor: alert.keepFiringFor)
        critical.update(holds: holdsCritical, at: time, holdFor: alert.holdFor, keepFiringFor: alert.keepFiringFor)

        let before = (state: state, level: level)
        if critical.firing || warn.firing {
            (state, level) = (.firing, critical.firing ? .critical : .warn)
        } else if holdsWarn || holdsCritical {
            (state, level) = (.pending, holdsCritical ? .critical : .warn)
        } else {
            (state, level) = (.ok, nil)
        }

        if before.state == .firing, state != .firing, let episode = since {
            changes.append(change(.resolved, nil, since: episode, at: time))
            since = nil
        }
        if before.state == .pending, state == .ok, let episode = since {
            changes.append(change(.ok, nil, since: episode, at: time))
            since = nil
        }
        if state == .pending, before.state != .pending {
            since = time
            changes.append(change(.pending, level, since: time, at: time))
        }
        if state == .firing, before.state != .firing || before.level != level {
            let episode = since ?? time
            since = episode
            changes.append(change(.firing, level, since: episode, at: time))
        }
    }

    private static func holds(_ threshold: AlertThreshold?, _ value: Double?) -> Bool {
        guard let threshold, let value else { return false }
        return threshold.holds(value)
    }

    private func change(_ kind: AlertChange.Kind, _ level: AlertLevel?, since: Int64, at time: Int64) -> AlertChange {
        AlertChange(
            alert: alert.name, state: kind, level: level, value: value, threshold: level.flatMap { alert.threshold(of: $0)?.value },
            since: since, at: time, reason: skipped?.reason)
    }
}
