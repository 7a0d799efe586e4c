/// Buyer regions from Chinese provinces, so an order ships from its region's warehouse first
/// (Zhejiang, Jiangsu, Shanghai and Anhui are east: Yiwu). Names are matched in Chinese with or
/// without their suffix (省, 市, 自治区…) and in pinyin, any case.
public enum Regions {
    static let table: [(region: String, names: [String])] = [
        ("east", ["上海", "江苏", "浙江", "安徽", "福建", "江西", "山东", "台湾",
                  "shanghai", "jiangsu", "zhejiang", "anhui", "fujian", "jiangxi", "shandong", "taiwan"]),
        ("south", ["广东", "广西", "海南", "湖南", "香港", "澳门",
                   "guangdong", "guangxi", "hainan", "hunan", "hongkong", "macau", "macao"]),
        ("north", ["北京", "天津", "河北", "山西", "内蒙古", "辽宁", "吉林", "黑龙江", "河南", "湖北",
                   "beijing", "tianjin", "hebei", "shanxi", "neimenggu", "innermongolia", "liaoning", "jilin", "heilongjiang",
                   "henan", "hubei"]),
        ("west", ["重庆", "四川", "贵州", "云南", "西藏", "陕西", "甘肃", "青海", "宁夏", "新疆",
                  "chongqing", "sichuan", "guizhou", "yunnan", "xizang", "tibet", "shaanxi", "gansu", "qinghai", "ningxia",
                  "xinjiang"]),
    ]
    static let suffixes = ["维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市", "province", "city", "shi", "sheng"]

    static let byName: [String: String] = {
        var map: [String: String] = [:]
        for (region, names) in table { for name in names { map[name] = region } }
        return map
    }()

    /// The region of a province, or nil for a name it does not know.
    public static func region(ofProvince province: String) -> String? {
        var name = province.lowercased().filter { !$0.isWhitespace && $0 != "-" && $0 != "'" }
        if let region = byName[name] { return region }
        for suffix in suffixes where name.hasSuffix(suffix) && name.count > suffix.count {
            name.removeLast(suffix.count)
            if let region = byName[name] { return region }
        }
        return nil
    }
}
