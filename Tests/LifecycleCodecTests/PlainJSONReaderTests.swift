import CSimdJSONBridge
import Glibc
import LifecycleEngine
import Testing

/// The shim reads plain JSON in one pass and leaves every other document to simdjson. What
/// the plain reader reads must be what simdjson reads, to the bit; these tests hold the two
/// against each other.
@Suite("Plain JSON reader")
struct PlainJSONReaderTests {
    /// Paths through every shape: top-level keys, nested ones, an object's own path beside
    /// paths below it, and a key that is also a prefix of another.
    static let paths = ["user_id", "event", "ts", "props", "props.plan", "props.amount", "props.deep.x", "tags", "t"]

    /// One reader, read both ways.
    final class Readers {
        let reader: OpaquePointer
        let count = PlainJSONReaderTests.paths.count

        init() {
            var cStrings = PlainJSONReaderTests.paths.map { strdup($0) }
            defer { cStrings.forEach { free($0) } }
            reader = cStrings.withUnsafeMutableBufferPointer { buffer in
                buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { lc_json_reader_new($0.baseAddress, $0.count) }
            }!
        }

        deinit { lc_json_reader_free(reader) }

        /// What a read gave, copied out of the reader's memory.
        struct Outcome: Equatable, CustomStringConvertible {
            var status: lc_json_status.RawValue
            var values: [Value]

            var description: String { "status \(status): \(values)" }
        }

        struct Value: Equatable, CustomStringConvertible {
            var kind: lc_json_kind.RawValue
            var integer: Int64
            /// The bits, so that -0.0 and 0.0 differ.
            var numberBits: UInt64
            var string: [UInt8]

            init(_ value: lc_json_value) {
                kind = value.kind.rawValue
                integer = value.integer
                numberBits = value.number.bitPattern
                string = value.string.map { Array(UnsafeRawBufferPointer(start: $0, count: value.length)) } ?? []
            }

            var description: String {
                "(\(kind), \(integer), \(Double(bitPattern: numberBits)), \(String(decoding: string, as: UTF8.self)))"
            }
        }

        /// nil when the plain reader leaves the document to simdjson.
        func plain(_ bytes: [UInt8]) -> Outcome? {
            read(bytes) { lc_json_reader_read_plain(reader, $0.baseAddress, $0.count, $1) == 1 ? LC_JSON_OK : nil }
        }

        func simdjson(_ bytes: [UInt8]) -> Outcome {
            read(bytes) { lc_json_reader_read_simdjson(reader, $0.baseAddress, $0.count, $1) }!
        }

        func combined(_ bytes: [UInt8]) -> Outcome {
            read(bytes) { lc_json_reader_read(reader, $0.baseAddress, $0.count, $1) }!
        }

        private func read(
            _ bytes: [UInt8], _ body: (UnsafeRawBufferPointer, UnsafeMutablePointer<lc_json_value>) -> lc_json_status?
        ) -> Outcome? {
            let values = UnsafeMutablePointer<lc_json_value>.allocate(capacity: count)
            defer { values.deallocate() }
            return bytes.withUnsafeBytes { raw in
                guard let status = body(raw, values) else { return nil }
                // A rejected document's values are not read by anyone.
                let read = status == LC_JSON_OK ? (0..<count).map { Value(values[$0]) } : []
                return Outcome(status: status.rawValue, values: read)
            }
        }
    }

    /// Checks one document both ways; returns whether the plain reader read it.
    @discardableResult
    static func compare(_ readers: Readers, _ bytes: [UInt8]) -> Bool {
        let reference = readers.simdjson(bytes)
        #expect(readers.combined(bytes) == reference, "\(String(decoding: bytes, as: UTF8.self))")
        guard let plain = readers.plain(bytes) else { return false }
        #expect(plain == reference, "plain reader differs from simdjson on \(String(decoding: bytes, as: UTF8.self))")
        return true
    }

    @Test("plain documents are read in one pass, as simdjson reads them", arguments: [
        #"{"user_id":"u42","event":"login","ts":1795380000123,"props":{"plan":"free","amount":9.5}}"#,
        #"  {"user_id" : "u1" ,"event":"x","ts":1795380000000 }  "#,
        "{\n\t\"user_id\":\"u\",\r\n\"event\":\"x\",\"ts\":1}\n",
        #"{"user_id":1234,"event":"x","ts":-42,"props":{"amount":-0.25,"plan":null,"deep":{"x":true}}}"#,
        #"{"props":{"amount":0,"deep":{"x":[1,{"y":false}]}},"tags":[],"t":{},"user_id":"a"}"#,
        #"{"props":[{"plan":"p"}],"props":{"plan":"q"},"t":"~","ts":999999999999999999}"#,
        #"{"props":{"amount":9007199254740.992},"ts":0.1,"event":123.456,"user_id":0}"#,
        #"{"props":"flat","props":{"plan":"second"},"user_id":"first","user_id":"second"}"#,
        "{}",
    ])
    func plainDocuments(json: String) {
        #expect(Self.compare(Readers(), Array(json.utf8)), "\(json)")
    }

    @Test("everything else is left to simdjson", arguments: [
        // Escapes and bytes outside ASCII, in keys and values.
        #"{"user_id":"a\"b","event":"x"}"#, #"{"us\u0065r_id":"a"}"#, #"{"user_id":"é"}"#, "{\"k\":\"\t\"}",
        // Numbers beyond what the plain reader converts exactly, or not numbers at all.
        #"{"ts":1e3}"#, #"{"ts":1E3}"#, #"{"ts":-0}"#, #"{"ts":-0.0}"#, #"{"ts":1234567890123456789}"#,
        #"{"ts":0.1234567890123456789}"#, #"{"ts":9007199254740993.5}"#, #"{"ts":01}"#, #"{"ts":1.}"#,
        #"{"ts":.5}"#, #"{"ts":+1}"#, #"{"ts":-}"#, #"{"ts":--1}"#, #"{"ts":1x}"#,
        // Malformed, truncated, or not an object.
        #"{"a":tru}"#, #"{"a":nulll}"#, #"{"a":[1,]}"#, #"{"a":1,}"#, #"{"a" 1}"#, #"{"a":1"b":2}"#,
        #"{"a":1} x"#, #"{"a":1}{}"#, #"{"a":"#, #"{"a""#, "{", "", "  ", "42", #""text""#, "[1,2]", "null",
        "{\"a\":1}\u{0}", "\u{feff}{}",
        // Deeper than the plain reader goes.
        String(repeating: #"{"a":"#, count: 40) + "1" + String(repeating: "}", count: 40),
    ])
    func leftToSimdjson(json: String) {
        #expect(!Self.compare(Readers(), Array(json.utf8)), "\(json)")
    }

    /// Random documents, plain ones and others, and then the same documents damaged: the
    /// plain reader reads every plain one and agrees with simdjson on everything it reads.
    @Test("random documents, whole and damaged, against simdjson")
    func randomDocuments() {
        let readers = Readers()
        var generator = DocumentGenerator(seed: 0x91a1_7e50_4e)
        var plainRead = 0, damagedRead = 0
        let count = 20_000
        for _ in 0..<count {
            let (document, isPlain) = generator.document()
            let read = Self.compare(readers, document)
            if isPlain {
                #expect(read, "a plain document was left to simdjson: \(String(decoding: document, as: UTF8.self))")
            }
            if read { plainRead += 1 }
            if Self.compare(readers, generator.damaged(document)) { damagedRead += 1 }
        }
        // Most generated documents are plain; some damage (a changed digit or letter) leaves
        // a document plain too. Both paths must have been taken for the test to mean anything.
        #expect(plainRead > count / 2)
        #expect(damagedRead > count / 20 && damagedRead < count)
    }
}

/// JSON documents from a small grammar around the paths' keys.
struct DocumentGenerator {
    private var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    private mutating func below(_ bound: Int) -> Int { Int(rng.next() % UInt64(bound)) }
    private mutating func chance(_ probability: Double) -> Bool { rng.unit() < probability }
    private mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    private static let keys = ["user_id", "event", "ts", "props", "plan", "amount", "deep", "x", "tags", "t", "other", "user"]
    private static let plainStrings = ["", "u1", "login", "free", "pro team", "a:b,c}{[]", "\u{7f}", "0123456789abcdefghij"]
    private static let plainNumbers = ["0", "7", "-3", "1795380000123", "999999999999999999", "-999999999999999999",
                                       "0.5", "9.99", "-0.25", "1234.5678", "0.000001", "9007199254740.992", "10.0"]
    /// Valid JSON the plain reader does not read.
    private static let otherValues = [#""a\"b""#, #""\u00e9""#, "\"é\"", "1e3", "-0", "-0.0", "1234567890123456789",
                                      "0.1234567890123456789", "9007199254740993.5", "18446744073709551616"]

    /// A document, and whether it is plain (then the plain reader must read it).
    mutating func document() -> (bytes: [UInt8], isPlain: Bool) {
        var text = ""
        var isPlain = true
        object(into: &text, depth: 0, isPlain: &isPlain)
        return (Array(text.utf8), isPlain)
    }

    /// The document with one byte changed, inserted or dropped, or cut short.
    mutating func damaged(_ document: [UInt8]) -> [UInt8] {
        var bytes = document
        let at = below(bytes.count)
        let replacements: [UInt8] = Array(#"{}[]",:0123456789.-+eE"\ tfnrux"#.utf8) + [0, 0x80, 0xC3, 0xFF]
        switch below(4) {
        case 0: bytes[at] = pick(replacements)
        case 1: bytes.insert(pick(replacements), at: at)
        case 2: bytes.remove(at: at)
        default: bytes.removeSubrange(at...)
        }
        return bytes
    }

    private mutating func space(into text: inout String) {
        if chance(0.1) { text += pick([" ", "\n", "\t", "\r\n", "  "]) }
    }

    private mutating func object(into text: inout String, depth: Int, isPlain: inout Bool) {
        text += "{"
        let fields = below(depth == 0 ? 7 : 4)
        for index in 0..<fields {
            if index > 0 { text += "," }
            space(into: &text)
            text += "\"\(pick(Self.keys))\""
            space(into: &text)
            text += ":"
            space(into: &text)
            value(into: &text, depth: depth + 1, isPlain: &isPlain)
            space(into: &text)
        }
        text += "}"
    }

    private mutating func value(into text: inout String, depth: Int, isPlain: inout Bool) {
        switch below(depth < 4 ? 10 : 7) {
        case 0, 1: text += "\"\(pick(Self.plainStrings))\""
        case 2, 3: text += pick(Self.plainNumbers)
        case 4: text += pick(["true", "false", "null"])
        case 5:
            if chance(0.5) {
                text += pick(Self.otherValues)
                isPlain = false
            } else {
                // Integers of every length: up to 18 digits they are plain.
                let integer = String(Int64(bitPattern: rng.next()) >> below(64))
                text += integer
                if integer.filter(\.isNumber).count > 18 { isPlain = false }
            }
        case 6: text += "\(below(1000)).\(below(1000))"
        case 7, 8: object(into: &text, depth: depth, isPlain: &isPlain)
        default:
            text += "["
            for index in 0..<below(4) {
                if index > 0 { text += "," }
                space(into: &text)
                value(into: &text, depth: depth + 1, isPlain: &isPlain)
            }
            text += "]"
        }
    }
}
