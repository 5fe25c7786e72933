import LifecycleCodec
import LifecycleEngine
import Testing

@Suite("Event decoding")
struct EventDecoderTests {
    struct Decoded: Equatable {
        var user: String
        var name: String
        var time: Int64
        var plan: String?
        var amount: Double?
    }

    func decode(_ json: String, fallback: Int64? = nil, fields: EventFields = EventFields()) -> Result<Decoded, EventRejection> {
        var decoder = EventDecoder(fields: fields, propertyPaths: ["props.plan", "props.amount"])
        var bytes = Array(json.utf8)
        var decoded: Decoded?
        let rejection = bytes.withUnsafeMutableBytes { raw in
            decoder.decode(UnsafeRawBufferPointer(raw), fallbackTime: fallback) { event in
                decoded = Decoded(
                    user: String(decoding: event.userID, as: UTF8.self),
                    name: String(decoding: event.name, as: UTF8.self),
                    time: event.time,
                    plan: event.properties[0].kind == .string ? String(decoding: event.properties[0].string, as: UTF8.self) : nil,
                    amount: event.properties[1].kind == .number ? event.properties[1].number : nil)
            }
        }
        if let rejection { return .failure(rejection) }
        return decoded.map { .success($0) } ?? .failure(.notJSON)
    }

    @Test("a well-formed event with nested properties")
    func wellFormed() {
        let result = decode(#"{"user_id":"u42","event":"login","ts":1795380000123,"props":{"plan":"free","amount":9.5}}"#)
        #expect(result == .success(Decoded(user: "u42", name: "login", time: 1_795_380_000_123, plan: "free", amount: 9.5)))
    }

    @Test("escaped and unicode user ids come out unescaped; integer ids as decimal text")
    func userIDs() throws {
        #expect(try decode(#"{"user_id":"a\"b\u00e9","event":"x","ts":1795380000000}"#).get().user == "a\"bé")
        #expect(try decode(#"{"user_id":-1234567890123,"event":"x","ts":1795380000000}"#).get().user == "-1234567890123")
    }

    @Test("every rejection reason", arguments: [
        ("not json", EventRejection.notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000"#, .notJSON),
        (#"[1,2]"#, .notObject),
        (#"{"event":"x","ts":1795380000000}"#, .missingUserID),
        (#"{"user_id":"","event":"x","ts":1795380000000}"#, .missingUserID),
        (#"{"user_id":null,"event":"x","ts":1795380000000}"#, .missingUserID),
        (#"{"user_id":{"a":1},"event":"x","ts":1795380000000}"#, .badUserID),
        (#"{"user_id":1.5,"event":"x","ts":1795380000000}"#, .badUserID),
        (#"{"user_id":"u"#, .notJSON),
        (#"{"user_id":"u","ts":1795380000000}"#, .missingEvent),
        (#"{"user_id":"u","event":7,"ts":1795380000000}"#, .badEvent),
        (#"{"user_id":"u","event":"x"}"#, .missingTime),
        (#"{"user_id":"u","event":"x","ts":"yesterday"}"#, .badTime),
        (#"{"user_id":"u","event":"x","ts":true}"#, .badTime),
        (#"{"user_id":"u","event":"x","ts":12}"#, .badTime),
        (#"{"user_id":"u","event":"x","ts":"2095-01-01T00:00:00Z"}"#, .badTime),
    ])
    func rejections(json: String, reason: EventRejection) {
        #expect(decode(json) == .failure(reason))
    }

    /// The decoder reads only the wanted fields but validates every other value: a message
    /// malformed anywhere is not JSON, as a full parse would say.
    @Test("malformed values in fields nobody reads, and trailing content", arguments: [
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":tru}"#, EventRejection.notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":nul}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":01}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":1e}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":"\q"}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":[1,]}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":{"a":[{"b":fals}]}}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"props":{"plan":"free","deep":{"x":-}}}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000,"other":99999999999999999999999}"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000} {"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000}]"#, .notJSON),
        (#"{"user_id":"u","event":"x","ts":1795380000000}{"a":1}"#, .notJSON),
        ("", .notJSON),
        ("  ", .notJSON),
        ("42", .notObject),
        (#""text""#, .notObject),
        ("null", .notObject),
        (#"[{"a":1},[]]"#, .notObject),
        ("[1,2", .notJSON),
        ("42 43", .notJSON),
    ])
    func strictness(json: String, reason: EventRejection) {
        #expect(decode(json) == .failure(reason))
    }

    @Test("the first of duplicate keys wins, and a path through a non-object is missing")
    func duplicatesAndShapes() {
        #expect(decode(#"{"user_id":"a","user_id":"b","event":"x","ts":1795380000000,"props":{"plan":"p1","plan":"p2"}}"#)
            == .success(Decoded(user: "a", name: "x", time: 1_795_380_000_000, plan: "p1", amount: nil)))
        #expect(decode(#"{"user_id":"a","event":"x","ts":1795380000000,"props":[{"plan":"p"}],"props":{"plan":"q"}}"#)
            == .success(Decoded(user: "a", name: "x", time: 1_795_380_000_000, plan: nil, amount: nil)))
        #expect(decode(#"{"props":{"amount":2.5e1,"plan":"team"},"ts":1795380000000,"event":"x","user_id":"a"}"#)
            == .success(Decoded(user: "a", name: "x", time: 1_795_380_000_000, plan: "team", amount: 25)))
    }

    @Test("a user id longer than 255 bytes is rejected")
    func longUserID() {
        let id = String(repeating: "x", count: 256)
        #expect(decode(#"{"user_id":"\#(id)","event":"x","ts":1795380000000}"#) == .failure(.badUserID))
    }

    @Test("oversized messages are rejected before parsing")
    func tooLarge() {
        let fields = EventFields(maxEventBytes: 40)
        #expect(decode(#"{"user_id":"u","event":"x","ts":1795380000000,"pad":"........"}"#, fields: fields) == .failure(.tooLarge))
    }

    @Test("a missing time falls back to the message timestamp")
    func fallbackTime() throws {
        #expect(try decode(#"{"user_id":"u","event":"x"}"#, fallback: 1_795_380_000_000).get().time == 1_795_380_000_000)
    }

    @Test("configured dot paths")
    func customPaths() {
        let fields = EventFields(userID: "who.id", name: "what", time: "when.at")
        let result = decode(#"{"who":{"id":"u9"},"what":"buy","when":{"at":"2026-11-22T10:00:00Z"}}"#, fields: fields)
        #expect(result == .success(Decoded(user: "u9", name: "buy", time: 1_795_341_600_000, plan: nil, amount: nil)))
    }
}

@Suite("RFC 3339")
struct RFC3339Tests {
    @Test("valid forms", arguments: [
        ("2026-11-22T10:00:00Z", Int64(1_795_341_600_000)),
        ("2026-11-22t10:00:00z", 1_795_341_600_000),
        ("2026-11-22 10:00:00Z", 1_795_341_600_000),
        ("2026-11-22T10:00:00.123Z", 1_795_341_600_123),
        ("2026-11-22T10:00:00.1Z", 1_795_341_600_100),
        ("2026-11-22T10:00:00.123456789Z", 1_795_341_600_123),
        ("2026-11-22T11:30:00+01:30", 1_795_341_600_000),
        ("2026-11-22T08:00:00-02:00", 1_795_341_600_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("1970-01-01T00:00:00Z", 0),
    ])
    func valid(text: String, millis: Int64) {
        #expect(RFC3339.parseMillis(text) == millis)
    }

    @Test("invalid forms", arguments: [
        "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T10:60:00Z",
        "2026-13-01T00:00:00Z", "2026-11-22T10:00:00", "2026-11-22T10:00:00+0100", "2026-11-22T10:00:00.Z",
        "2026-11-22X10:00:00Z", "2026-11-22T10:00:00Zjunk", "26-11-22T10:00:00Z",
    ])
    func invalid(text: String) {
        #expect(RFC3339.parseMillis(text) == nil)
    }

    @Test("formatting round-trips")
    func roundTrip() {
        for millis: Int64 in [0, 1_795_341_600_000, 1_795_341_600_123, 1_709_164_800_000, 4_102_444_799_999] {
            #expect(RFC3339.parseMillis(RFC3339.format(millis: millis)) == millis)
        }
        #expect(RFC3339.format(millis: 1_795_341_600_000) == "2026-11-22T10:00:00Z")
    }
}
