/// Durations as operators type and read them: `90s`, `10m`, `1h30m`, `500ms`, `2d`.
public enum Durations {
    /// Milliseconds in `text`: one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`, `d`.
    /// A bare integer is seconds.
    public static func parse(_ text: String) -> Int64? {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { return nil }
        if let seconds = Int64(trimmed) { return seconds >= 0 ? multiply(seconds, 1000) : nil }
        var total: Int64 = 0
        var digits = ""
        var unit = ""
        var parts = 0
        func flush() -> Bool {
            guard !digits.isEmpty, let value = Int64(digits), let scale = scales[unit], let ms = multiply(value, scale) else {
                return false
            }
            let (sum, overflow) = total.addingReportingOverflow(ms)
            guard !overflow else { return false }
            total = sum
            digits = ""
            unit = ""
            parts += 1
            return true
        }
        for character in trimmed {
            if character.isASCII && character.isNumber {
                if !unit.isEmpty { guard flush() else { return nil } }
                digits.append(character)
            } else if character.isLetter {
                guard !digits.isEmpty else { return nil }
                unit.append(character)
            } else {
                return nil
            }
        }
        guard flush(), parts > 0 else { return nil }
        return total
    }

    /// `850ms`, `45s`, `14m58s`, `2h03m`, `3d04h`: the two largest units, so a column stays short.
    public static func format(milliseconds ms: Int64) -> String {
        let negative = ms < 0
        let value = ms.magnitude
        let text: String
        if value < 1000 {
            text = "\(value)ms"
        } else {
            let seconds = value / 1000
            let (days, hours, minutes, secs) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60, seconds % 60)
            if days > 0 {
                text = "\(days)d\(pad(hours))h"
            } else if hours > 0 {
                text = "\(hours)h\(pad(minutes))m"
            } else if minutes > 0 {
                text = "\(minutes)m\(pad(secs))s"
            } else {
                text = "\(secs)s"
            }
        }
        return negative ? "-" + text : text
    }

    static let scales: [String: Int64] = ["ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]

    static func multiply(_ value: Int64, _ scale: Int64) -> Int64? {
        let (product, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : product
    }

    static func pad(_ value: UInt64) -> String { value < 10 ? "0\(value)" : "\(value)" }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
