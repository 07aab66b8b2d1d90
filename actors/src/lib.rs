//! The supervised actor system: root supervisor → account actors → cluster actors, the
//! discovery loop, the event bus and the global risk tracker ("hive mind").

pub mod bus;
pub mod connect;
pub mod discovery;
pub mod hibernation;
pub mod hive;
pub mod market;
pub mod policy;
pub mod presleep;
pub mod react;
pub mod risk;
pub mod signals;
pub mod sim_agent;
pub mod system;
