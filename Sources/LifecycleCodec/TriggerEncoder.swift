import LifecycleEngine

/// Writes triggers and conversions as compact JSON, with a fixed key order so the same
/// trigger always gives the same bytes (replay output is compared byte for byte).
public struct TriggerEncoder: Sendable {
    /// The parts of each trigger form's JSON that only the rules decide, quoted at a form's
    /// first firing: quoting the name, reason and evidence names every time was about half
    /// of encoding a trigger.
    private var forms: [UInt64: QuotedForm] = [:]
    /// The rules `forms` were quoted from; other rules start them afresh. Held strongly, so
    /// a new rules object can never be taken for them (until then they stay alive).
    private var formsRules: CompiledRules?

    public init() {}

    /// `{"id":…,"trigger":…,"arm":…,"user_id":…,"fired_at":…,"transition":{…},"reason":…,"evidence":{…},"config_version":…}`;
    /// `arm` only for triggers with a holdout, `transition` only for stage-entry triggers. No trailing newline.
    /// Written from `output`'s buffers and the `rules` that fired the trigger: once each form is
    /// quoted, nothing is allocated.
    public mutating func encode(_ trigger: FiredTrigger, of output: borrowing EngineOutput, rules: CompiledRules, into out: inout [UInt8]) {
        if formsRules !== rules {
            forms.removeAll()
            formsRules = rules
        }
        let form = forms[trigger.form] ?? quote(trigger, rules: rules)
        Self.literal(#"{"id":""#, &out)
        trigger.id.appendHex(to: &out)
        out.append(contentsOf: form.trigger)
        Self.arm(trigger.arm, &out)
        Self.literal(#","user_id":"#, &out)
        Self.string(output.userID(of: trigger), &out)
        Self.literal(#","fired_at":"#, &out)
        Self.integer(trigger.firedAt, &out)
        out.append(contentsOf: form.transitionToEvidence)
        for (key, value) in zip(form.evidenceKeys, output.evidence(of: trigger)) {
            out.append(contentsOf: key)
            switch value {
            case .integer(let value): Self.integer(value, &out)
            case .number(let value): Self.number(value, &out)
            case .text(let range): Self.string(output.text(range), &out)
            }
        }
        out.append(contentsOf: form.end)
    }

    /// A form's constant parts, in the order `encode` writes them. A class: a struct's
    /// arrays were each retained and released whenever `forms` gave one out.
    private final class QuotedForm: Sendable {
        /// `","trigger":"…"`, closing the id.
        let trigger: [UInt8]
        /// `,"transition":{…}` if any, `,"reason":"…","evidence":{`.
        let transitionToEvidence: [UInt8]
        /// `"name":`, after a comma but for the first.
        let evidenceKeys: [[UInt8]]
        /// `},"config_version":"…"}`.
        let end: [UInt8]

        init(_ fired: FiredTrigger, rules: CompiledRules) {
            var trigger: [UInt8] = []
            TriggerEncoder.literal(#"","trigger":"#, &trigger)
            TriggerEncoder.string(rules.triggerNames[fired.trigger], &trigger)
            self.trigger = trigger
            var middle: [UInt8] = []
            if let change = rules.stageChange(of: fired) {
                TriggerEncoder.literal(#","transition":{"from":"#, &middle)
                TriggerEncoder.string(change.from, &middle)
                TriggerEncoder.literal(#","to":"#, &middle)
                TriggerEncoder.string(change.to, &middle)
                middle.append(UInt8(ascii: "}"))
            }
            TriggerEncoder.literal(#","reason":"#, &middle)
            TriggerEncoder.string(rules.reason(of: fired), &middle)
            TriggerEncoder.literal(#","evidence":{"#, &middle)
            transitionToEvidence = middle
            evidenceKeys = rules.evidenceNames(of: fired).enumerated().map { index, name in
                var key: [UInt8] = index > 0 ? [UInt8(ascii: ",")] : []
                TriggerEncoder.string(name, &key)
                key.append(UInt8(ascii: ":"))
                return key
            }
            var end: [UInt8] = []
            TriggerEncoder.literal(#"},"config_version":"#, &end)
            TriggerEncoder.string(rules.configVersion, &end)
            end.append(UInt8(ascii: "}"))
            self.end = end
        }
    }

    private mutating func quote(_ trigger: FiredTrigger, rules: CompiledRules) -> QuotedForm {
        let form = QuotedForm(trigger, rules: rules)
        forms[trigger.form] = form
        return form
    }

    /// `{"conversion":…,"arm":…,"trigger_id":…,"user_id":…,"fired_at":…,"converted_at":…}`, `arm` as for triggers.
    public func encode(_ conversion: Conversion, into out: inout [UInt8]) {
        Self.literal(#"{"conversion":"#, &out)
        Self.string(conversion.trigger, &out)
        Self.arm(conversion.arm, &out)
        Self.literal(#","trigger_id":"#, &out)
        Self.string(conversion.triggerID, &out)
        Self.literal(#","user_id":"#, &out)
        Self.string(conversion.userID, &out)
        Self.literal(#","fired_at":"#, &out)
        Self.integer(conversion.firedAt, &out)
        Self.literal(#","converted_at":"#, &out)
        Self.integer(conversion.convertedAt, &out)
        out.append(UInt8(ascii: "}"))
    }

    /// A literal's bytes in one copy: appending a `String.UTF8View` walks the string, about
    /// 170 instructions for a key.
    @inline(__always)
    private static func literal(_ text: StaticString, _ out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private static func arm(_ arm: Arm?, _ out: inout [UInt8]) {
        switch arm {
        case nil: break
        case .treatment: Self.literal(#","arm":"treatment""#, &out)
        case .control: Self.literal(#","arm":"control""#, &out)
        }
    }

    /// Decimal digits written straight into `out` (no intermediate String).
    static func integer(_ value: Int64, _ out: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[writeDecimal(value, endingAt: buffer)...]))
        }
    }

    /// Integral values print as integers; others in Swift's shortest round-trip form;
    /// NaN and infinities, which JSON cannot hold, as null.
    static func number(_ value: Double, _ out: inout [UInt8]) {
        if !value.isFinite {
            Self.literal("null", &out)
        } else if value.rounded(.towardZero) == value, abs(value) < 9_007_199_254_740_992 {
            integer(Int64(value), &out)
        } else {
            out.append(contentsOf: value.description.utf8)
        }
    }

    static func string(_ value: String, _ out: inout [UInt8]) {
        value.withUTF8Bytes { string($0, &out) }
    }

    static func string(_ value: ArraySlice<UInt8>, _ out: inout [UInt8]) {
        value.withUnsafeBytes { string($0, &out) }
    }

    /// A JSON string: runs of bytes that need no escape are appended whole.
    static func string(_ bytes: UnsafeRawBufferPointer, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var plain = 0
        for index in bytes.indices[firstEscapeCandidate(bytes)...] {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[plain..<index]))
            plain = index + 1
            switch byte {
            case UInt8(ascii: "\""): Self.literal(#"\""#, &out)
            case UInt8(ascii: "\\"): Self.literal(#"\\"#, &out)
            case UInt8(ascii: "\n"): Self.literal(#"\n"#, &out)
            case UInt8(ascii: "\r"): Self.literal(#"\r"#, &out)
            case UInt8(ascii: "\t"): Self.literal(#"\t"#, &out)
            default:
                let hex = Array("0123456789abcdef".utf8)
                Self.literal(#"\u00"#, &out)
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            }
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[plain...]))
        out.append(UInt8(ascii: "\""))
    }
}

/// Where the first 8-byte word of `bytes` that may need an escape starts (or the start of
/// the tail shorter than a word): the words before it are checked 8 bytes at a time, since
/// names, reasons and ids rarely need one.
private func firstEscapeCandidate(_ bytes: UnsafeRawBufferPointer) -> Int {
    let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
    @inline(__always) func hasZeroByte(_ word: UInt64) -> Bool { (word &- ones) & ~word & highs != 0 }
    var index = 0
    while index + 8 <= bytes.count {
        let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        // A byte below 0x20 (its top three bits clear), a quote or a backslash: possibly one here.
        let control = hasZeroByte(word & 0xE0E0_E0E0_E0E0_E0E0)
        let quote = hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "\""))))
        let backslash = hasZeroByte(word ^ (ones &* UInt64(UInt8(ascii: "\\"))))
        if control || quote || backslash { break }
        index += 8
    }
    return index
}

/// Writes `value` in decimal at the end of `buffer` (at least 21 bytes: a sign and the 20
/// digits of the largest magnitude); returns the index where the text starts.
func writeDecimal(_ value: Int64, endingAt buffer: UnsafeMutableRawBufferPointer) -> Int {
    var magnitude = value.magnitude
    var start = buffer.count
    repeat {
        start -= 1
        buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
        magnitude /= 10
    } while magnitude > 0
    if value < 0 {
        start -= 1
        buffer[start] = UInt8(ascii: "-")
    }
    return start
}
