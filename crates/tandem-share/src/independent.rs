//! No sharing: one trunk (column) per task — the single-task baseline.
//!
//! `ŷ_t = head_t(column_t(x))`. Parameter names: `<prefix>.columns.<task>.*`,
//! `<prefix>.heads.<task>.*`. Nothing is shared, so [`ParamGroups::shared`] is empty and
//! gradient-based weightings reduce to per-task scaling.
use crate::columns::Columns;
use crate::{MultiTaskNet, NetOutput, ParamGroups, Result};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use tandem_heads::TaskSet;
use tandem_layers::Backbone;

/// One column and one head per task.
pub struct Independent<B: Backbone> {
    columns: Columns<B>,
}

impl<B: Backbone> Independent<B> {
    /// Builds one column per task with `build(vb.pp("columns").pp(task))` and its head under
    /// `vb.pp("heads").pp(task)`.
    pub fn new<E>(
        tasks: &TaskSet,
        vb: VarBuilder,
        build: impl FnMut(VarBuilder) -> std::result::Result<B, E>,
    ) -> Result<Self>
    where
        crate::ShareError: From<E>,
    {
        Ok(Self {
            columns: Columns::new(tasks, vb, build)?,
        })
    }

    /// The column of `task`.
    pub fn column(&self, task: &str) -> Option<&B> {
        self.columns.column(task)
    }
}

impl<B: Backbone> MultiTaskNet for Independent<B> {
    fn forward_t(&self, input: &Tensor, train: bool) -> candle_core::Result<NetOutput> {
        Ok(NetOutput {
            predictions: self.columns.forward_t(input, train)?,
            penalty: None,
        })
    }

    fn param_groups(&self) -> ParamGroups {
        ParamGroups {
            shared: Vec::new(),
            last_shared: Vec::new(),
            tasks: self.columns.task_groups(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HardSharing;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;
    use tandem_heads::{ClassTask, LandmarkTask};
    use tandem_layers::{Tcdcn, TcdcnConfig};

    #[test]
    fn groups_and_names() -> Result<()> {
        let tasks = TaskSet::new()
            .with(LandmarkTask::new("landmarks", 5))
            .with(ClassTask::new("pose", 5).auxiliary());
        let vars = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&vars, 1, DType::F32, &Device::Cpu);
        let net = Independent::new(&tasks, vb, |vb| Tcdcn::new(TcdcnConfig::default(), vb))?;
        let g = net.param_groups();
        assert!(g.shared.is_empty());
        assert_eq!(g.tasks["pose"], ["columns.pose", "heads.pose"]);
        let out = net.forward_t(
            &Tensor::zeros((2, 1, 40, 40), DType::F32, &Device::Cpu)?,
            true,
        )?;
        assert_eq!(out.predictions["pose"].dims(), &[2, 5]);
        assert!(tandem_tensor::select_vars(&vars, &g.tasks["pose"]).len() == 12);

        let hv = VarMap::new();
        let vb = tandem_tensor::seeded_var_builder(&hv, 1, DType::F32, &Device::Cpu);
        let hard = HardSharing::new(
            Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?,
            &tasks,
            vb.pp("heads"),
        )?;
        let g = hard.param_groups();
        assert_eq!(g.shared, ["trunk"]);
        assert_eq!(g.last_shared, ["trunk.fc"]);
        assert_eq!(g.tasks["landmarks"], ["heads.landmarks"]);
        Ok(())
    }

    /// The trunk's initial weights depend only on seed and name: one head or two, same trunk.
    #[test]
    fn trunk_init_is_independent_of_heads() -> Result<()> {
        let one = TaskSet::new().with(LandmarkTask::new("landmarks", 5));
        let two = one.clone().with(ClassTask::new("smile", 2).auxiliary());
        let mut ws = Vec::new();
        for tasks in [&one, &two] {
            let vars = VarMap::new();
            let vb = tandem_tensor::seeded_var_builder(&vars, 5, DType::F32, &Device::Cpu);
            let t = Tcdcn::new(TcdcnConfig::default(), vb.pp("trunk"))?;
            let _net = HardSharing::new(t, tasks, vb.pp("heads"))?;
            let w = tandem_tensor::select_vars(&vars, &["trunk".into()]);
            ws.push(
                w.iter()
                    .map(|(_, v)| v.flatten_all().and_then(|t| t.to_vec1::<f32>()))
                    .collect::<candle_core::Result<Vec<_>>>()?,
            );
        }
        assert_eq!(ws[0], ws[1]);
        Ok(())
    }
}
