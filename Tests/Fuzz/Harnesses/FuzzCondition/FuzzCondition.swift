import FuzzSupport
import LifecycleEngine

/// Any condition text is parsed and compiled (as a trigger's `when:` over a counter, an
/// attribute and two stages) or refused with an error: never a crash.
private let counter = CounterRule(name: "logins_7d", events: .names([Located("login")]), window: 7 * Millis.day)
private let plan = AttributeRule(name: "plan", path: "props.plan")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCondition(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard (try? Expression.parse(text)) != nil else { return 0 }
    _ = try? CompiledRules(Rules(
        counters: [counter], attributes: [plan],
        lifecycle: LifecycleRule(
            stages: [Located("new"), Located("old")], initial: Located("new"),
            transitions: [TransitionRule(from: [Located("new")], to: Located("old"), condition: .when(Located(text)))]),
        triggers: [TriggerRule(name: "t", fire: .when(Located(text)))]))
    return 0
}

@_cdecl("FuzzCondition_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzCondition)
}
