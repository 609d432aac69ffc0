//! Which device a run's tensors live on: `"cpu"` (the default), `"cuda"` / `"cuda:N"` or
//! `"metal"` / `"metal:N"` in a configuration (`[train] device`) or on the command line
//! (`--device`).
//!
//! [`DeviceSpec::open`] turns the name into a candle [`Device`]. A GPU device needs a build
//! with its candle feature — `cuda` (and `cudnn` for cuDNN convolutions) or `metal`, forwarded
//! by every tandem crate that runs models (`cargo build --release -p tandem-cli --features
//! cuda`); without it, or without the device, the error says which feature or device is
//! missing rather than falling back to the CPU. On a GPU, tandem's CPU convolution and pooling
//! kernels give way to candle's own operations ([`crate::ops::Backend`]).
use candle_core::Device;
use std::fmt;
use std::str::FromStr;

/// A device by name (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    /// The CPU (the default).
    #[default]
    Cpu,
    /// CUDA device `N` (`"cuda"` is `"cuda:0"`).
    Cuda(usize),
    /// Metal device `N` (`"metal"` is `"metal:0"`).
    Metal(usize),
}

/// Why a device could not be named or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// Not a device name.
    #[error(
        "unknown device {0:?}: expected \"cpu\", \"cuda\", \"cuda:N\", \"metal\" or \"metal:N\""
    )]
    Name(String),
    /// The build lacks the device's feature.
    #[error(
        "device {spec}: this build has no {feature} support; rebuild with `--features {feature}` \
         (e.g. `cargo build --release -p tandem-cli --features {feature}`)"
    )]
    NotBuilt {
        /// The device asked for.
        spec: String,
        /// The cargo feature that turns it on.
        feature: &'static str,
    },
    /// The feature is built but the device cannot be opened.
    #[error("device {spec} is not available: {reason}")]
    Unavailable {
        /// The device asked for.
        spec: String,
        /// candle's reason.
        reason: String,
    },
}

impl DeviceSpec {
    /// Whether this is the CPU.
    pub fn is_cpu(&self) -> bool {
        *self == DeviceSpec::Cpu
    }

    /// The cargo feature a build needs for this device (`None` for the CPU).
    pub fn feature(&self) -> Option<&'static str> {
        match self {
            DeviceSpec::Cpu => None,
            DeviceSpec::Cuda(_) => Some("cuda"),
            DeviceSpec::Metal(_) => Some("metal"),
        }
    }

    /// Whether this build has the device's feature.
    pub fn is_built(&self) -> bool {
        match self {
            DeviceSpec::Cpu => true,
            DeviceSpec::Cuda(_) => cfg!(feature = "cuda"),
            DeviceSpec::Metal(_) => cfg!(feature = "metal"),
        }
    }

    /// Opens the device.
    pub fn open(&self) -> Result<Device, DeviceError> {
        if !self.is_built() {
            return Err(DeviceError::NotBuilt {
                spec: self.to_string(),
                feature: self.feature().unwrap_or("cpu"),
            });
        }
        let device = match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => Device::new_cuda(*n),
            DeviceSpec::Metal(n) => Device::new_metal(*n),
        };
        device.map_err(|e| DeviceError::Unavailable {
            spec: self.to_string(),
            reason: e.to_string(),
        })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        let (kind, index) = match name.split_once(':') {
            Some((k, i)) => (
                k,
                i.parse::<usize>()
                    .map_err(|_| DeviceError::Name(s.to_string()))?,
            ),
            None => (name.as_str(), 0),
        };
        match (kind, name.contains(':')) {
            ("cpu", false) => Ok(DeviceSpec::Cpu),
            ("cuda", _) => Ok(DeviceSpec::Cuda(index)),
            ("metal", _) => Ok(DeviceSpec::Metal(index)),
            _ => Err(DeviceError::Name(s.to_string())),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = DeviceError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> Self {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        for (name, spec, shown) in [
            ("cpu", DeviceSpec::Cpu, "cpu"),
            ("CUDA", DeviceSpec::Cuda(0), "cuda:0"),
            ("cuda:1", DeviceSpec::Cuda(1), "cuda:1"),
            ("metal", DeviceSpec::Metal(0), "metal:0"),
        ] {
            assert_eq!(name.parse::<DeviceSpec>(), Ok(spec), "{name}");
            assert_eq!(spec.to_string(), shown);
            assert_eq!(shown.parse::<DeviceSpec>(), Ok(spec));
        }
        for bad in ["gpu", "cuda:x", "cpu:1", "", "cuda:-1"] {
            assert!(
                matches!(bad.parse::<DeviceSpec>(), Err(DeviceError::Name(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_cpu_opens_and_a_missing_feature_is_named() {
        assert!(matches!(DeviceSpec::Cpu.open(), Ok(Device::Cpu)));
        if !cfg!(feature = "cuda") {
            let e = DeviceSpec::Cuda(0).open().err().map(|e| e.to_string());
            assert!(
                e.as_deref().is_some_and(|e| e.contains("--features cuda")),
                "{e:?}"
            );
        }
    }
}
