import Replay
import Trace

/// Verdicts, as LTP names them.
public enum Verdict: String, Sendable, CaseIterable {
    /// Every stated outcome matched.
    case pass = "PASS"
    /// An outcome differed from the rule's expectation.
    case fail = "FAIL"
    /// The check itself could not run properly (bad scenario, an event the
    /// backend could not perform).
    case brok = "BROK"
    /// Not applicable here: the rule is for other kernel versions, or needs
    /// a device this setup does not have.
    case conf = "CONF"
    /// Matched, but the modelled kernel would crash or corrupt memory on the
    /// way (a hazard the engine reports).
    case warn = "WARN"
}

/// One rule's outcome on one backend.
public struct RuleResult: Sendable {
    public let rule: Rule
    public let backend: String
    public let verdict: Verdict
    /// Why, in one line: the first divergence, the reason for CONF or BROK.
    public let detail: String
    /// The scenario file that ran (nil for CONF without one).
    public let scenario: String?
    /// For FAIL: the first divergent event, for reports that draw it.
    public var firstDivergence: ReplayStep? = nil
}

/// Runs rules on a backend.
public enum ConformRunner {
    /// What the rules run on.
    public struct Target {
        /// A fresh backend for one rule's events (each rule starts from a
        /// clean container), or why it cannot be made.
        public var makeBackend: ([Event]) -> Result<Backend, BackendUnavailable>
        /// The profile that picks each rule's scenario: the engine's, or
        /// the one `auto` maps the real kernel's release to.
        public var profile: KernelProfile
        /// A name for reports: `engine:5.12`, `vfio:6.1.0-56-amd64`.
        public var name: String
        /// Whether scenarios with emulated groups can run (the engine: yes;
        /// real VFIO: only with the vfiotrace_pin device).
        public var hasPinningDevice: Bool
        /// The engine's host, for an engine target (nil: a real kernel,
        /// whose host is the machine).
        public var engineHost: HostModel?
        /// For a real kernel: what the machine's IOMMU answered a probe
        /// container (nil when it could not be asked).
        public var machineHost: HostModel?
        /// The host whose traits go into the rules' `{host:…}` values
        /// (``RuleScenario/text(on:)``): the engine's, else the machine's,
        /// else the lab's defaults.
        public var ruleHost: HostModel { engineHost ?? machineHost ?? HostModel() }

        public init(name: String, profile: KernelProfile, hasPinningDevice: Bool, engineHost: HostModel? = nil,
                    makeBackend: @escaping ([Event]) -> Result<Backend, BackendUnavailable>) {
            self.name = name
            self.profile = profile
            self.hasPinningDevice = hasPinningDevice
            self.engineHost = engineHost
            self.makeBackend = makeBackend
        }

        /// The bitmap engine under `profile`, on `host`.
        public static func engine(_ profile: KernelProfile, host: HostModel = HostModel()) -> Target {
            Target(name: "engine:\(profile.name)", profile: profile, hasPinningDevice: true, engineHost: host) { _ in
                .success(BitmapEngine(profile: profile, host: host))
            }
        }
    }

    public struct BackendUnavailable: Error {
        public let reason: String
        public init(_ reason: String) { self.reason = reason }
    }

    public static func run(_ rule: Rule, on target: Target) -> RuleResult {
        func result(_ v: Verdict, _ detail: String, _ path: String? = nil, step: ReplayStep? = nil) -> RuleResult {
            RuleResult(rule: rule, backend: target.name, verdict: v, detail: detail, scenario: path, firstDivergence: step)
        }
        guard let scenario = rule.scenario(for: target.profile) else {
            return result(.conf, "not applicable to kernel behaviour \(target.profile.name) (written for "
                          + rule.scenarios.map(\.profiles.text).joined(separator: "; ") + ")")
        }
        if scenario.needsPinningDevice && !target.hasPinningDevice {
            return result(.conf, "needs a pinning device (the vfiotrace_pin test module; vfio-pci never pins)", scenario.path)
        }
        let events: [Event]
        do { events = try TextParser.parse(scenario.text(on: target.ruleHost)).1 } catch let e as TextError {
            return result(.brok, "\(scenario.path):\(e.line):\(e.column): \(e.message)", scenario.path)
        } catch {
            return result(.brok, "\(scenario.path): \(error)", scenario.path)
        }
        let backend: Backend
        switch target.makeBackend(events) {
        case .success(let b): backend = b
        case .failure(let e): return result(.brok, e.reason, scenario.path)
        }
        defer { backend.close() }
        // Counted as replay counts: the same ReplaySummary.
        var replayer = Replayer(backend: backend)
        var summary = ReplaySummary(options: replayer.checker.options)
        var firstStep: ReplayStep? = nil
        for e in events {
            let step = replayer.step(e)
            let before = summary.firstDivergence
            summary.add(step)
            if before == nil && summary.firstDivergence != nil { firstStep = step }
            if let why = summary.firstUnreplayable {
                return result(.brok, "could not be performed: \(why)", scenario.path)
            }
        }
        if summary.statedOutcomes == 0 { return result(.brok, "the scenario states no outcome to check", scenario.path) }
        if let d = summary.firstDivergence { return result(.fail, d, scenario.path, step: firstStep) }
        if let h = summary.firstHazard { return result(.warn, "kernel hazard: \(h)", scenario.path) }
        return result(.pass, "\(summary.statedOutcomes) outcomes matched", scenario.path)
    }
}
