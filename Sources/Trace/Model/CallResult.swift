/// What a call returned: a non-negative value, or a failure with its errno.
///
/// An ioctl returns `-1` and sets `errno` on failure; kernel-internal calls
/// (`vfio_pin_pages` and friends) return `-errno`. Both are stored the same
/// way so that replay compares them uniformly.
public enum CallResult: Equatable, Hashable, Sendable {
    /// The call succeeded and returned this value (0 for most ioctls, a file
    /// descriptor for `open` and `GET_DEVICE_FD`, a page count for pins).
    case ok(Int64)
    /// The call failed with this errno (positive, e.g. 22 for `EINVAL`).
    case error(Int32)

    public static let success = CallResult.ok(0)

    public var isSuccess: Bool {
        if case .ok = self { return true }
        return false
    }

    /// The returned value when the call succeeded.
    public var value: Int64? {
        if case .ok(let v) = self { return v }
        return nil
    }

    /// The errno when the call failed.
    public var errno: Int32? {
        if case .error(let e) = self { return e }
        return nil
    }
}
