# Copyright 2026 The spa3r_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""Configuration of the spa3r_node: the one place its defaults and rules are written.

Every field becomes a ROS parameter named by its dotted path (``scene.keyframes.window``), with the
description, range and read-only flag given here; ``config/spa3r.yaml`` and the README's parameter
table are generated from these classes (``python -m spa3r_ros.cli.dump_params``) and a test checks
that they are in sync.
"""

from dataclasses import dataclass

from spa3r_ros.configs.fields import check_fields, param
from spa3r_ros.configs.scene import SceneConfig
from spa3r_ros.core.errors import ConfigError

# Model presets the node knows: '' and the presets of models/registry.yaml (a test keeps the two
# equal). '' means "no model": every valid goal is answered with MODEL_ERROR and a message saying
# so (the documented behaviour of a node without a model).
MODEL_PRESETS = ('', 'tiny-random', 'small-random', 'synthetic-small', 'official')

# Longest prompt a question may run, in tokens (also the generator's default when called directly).
# The reference's evaluation (32 frames at Qwen's largest pixel budget) needs at most ~18.5 k.
DEFAULT_MAX_PROMPT_TOKENS = 32768


@dataclass(frozen=True)
class InputsConfig:
    """Camera inputs.

    Args:
        image_topics: sensor_msgs/Image topics to subscribe to (relative names are namespaced).
        compressed_image_topics: sensor_msgs/CompressedImage topics (JPEG or PNG).
        odom_topic: nav_msgs/Odometry topic whose poses help the keyframe policy ('' = none).
        qos_depth: history depth of the camera subscriptions (sensor-data QoS: best effort;
            messages the middleware loses are counted in ``SceneStatus.frames_lost``).
    """

    image_topics: tuple[str, ...] = param(
        ('image_raw',), description='sensor_msgs/Image topics to subscribe to', read_only=True
    )
    compressed_image_topics: tuple[str, ...] = param(
        (), description='sensor_msgs/CompressedImage topics (JPEG or PNG)', read_only=True
    )
    odom_topic: str = param(
        '',
        description="nav_msgs/Odometry topic for the keyframe policy ('' = none)",
        read_only=True,
    )
    qos_depth: int = param(
        5, description='History depth of the camera subscriptions', bounds=(1, 100), read_only=True
    )

    def __post_init__(self) -> None:
        check_fields(self)
        topics = list(self.image_topics) + list(self.compressed_image_topics)
        if any(not t.strip() for t in topics):
            raise ConfigError(f'InputsConfig: empty topic name in {topics}')
        if len(set(topics)) != len(topics):
            raise ConfigError(f'InputsConfig: a topic is listed twice in {topics}')


@dataclass(frozen=True)
class QueryConfig:
    """Limits and defaults of the SpatialQuery action server (changeable at run time).

    Every piece of a goal's text counts against a limit: the cheap ones (characters, list lengths)
    are checked before anything is tokenised, the prompt's length in tokens before the model runs.

    Args:
        max_queued_goals: goals that may wait while one is executing; further goals are rejected.
        max_question_chars: longest accepted question text.
        max_objects: most object names a goal may carry.
        max_options: most answer options a goal may carry.
        max_item_chars: longest accepted object name or option.
        max_prompt_tokens: longest prompt (system turn, every frame's vision tokens, the question
            with its options and instructions) a question may run.
        default_timeout_sec: timeout of goals that give none (``timeout_sec`` 0).
        max_timeout_sec: the longest timeout a goal may ask for.
        default_max_new_tokens: generation budget of goals that give none.
        max_new_tokens_limit: the largest budget a goal may ask for.
    """

    max_queued_goals: int = param(
        8, description='Goals that may wait while one executes; more are rejected', bounds=(0, 256)
    )
    max_question_chars: int = param(
        2000, description='Longest accepted question text', bounds=(1, 100000), unit='characters'
    )
    max_objects: int = param(16, description='Most object names a goal may carry', bounds=(3, 256))
    max_options: int = param(
        10, description='Most answer options a goal may carry', bounds=(2, 10)
    )
    max_item_chars: int = param(
        256,
        description='Longest accepted object name or option',
        bounds=(1, 10000),
        unit='characters',
    )
    max_prompt_tokens: int = param(
        DEFAULT_MAX_PROMPT_TOKENS,
        description='Longest prompt (frames and question) a question may run',
        bounds=(64, 1000000),
        unit='tokens',
    )
    default_timeout_sec: float = param(
        30.0, description='Timeout of goals that set none', bounds=(0.1, 3600.0), unit='s'
    )
    max_timeout_sec: float = param(
        600.0, description='Longest timeout a goal may ask for', bounds=(0.1, 86400.0), unit='s'
    )
    default_max_new_tokens: int = param(
        64, description='Generation budget of goals that set none', bounds=(1, 8192)
    )
    max_new_tokens_limit: int = param(
        1024, description='Largest generation budget a goal may ask for', bounds=(1, 8192)
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.default_timeout_sec > self.max_timeout_sec:
            raise ConfigError(
                f'QueryConfig.default_timeout_sec = {self.default_timeout_sec} exceeds '
                f'max_timeout_sec = {self.max_timeout_sec}'
            )
        if self.default_max_new_tokens > self.max_new_tokens_limit:
            raise ConfigError(
                f'QueryConfig.default_max_new_tokens = {self.default_max_new_tokens} exceeds '
                f'max_new_tokens_limit = {self.max_new_tokens_limit}'
            )


@dataclass(frozen=True)
class ModelConfig:
    """Which model answers, and where it runs.

    Args:
        preset: a preset of ``models/registry.yaml``; empty means no model (goals get MODEL_ERROR).
        checkpoint_path: local checkpoint folder overriding the preset's; empty means the preset's.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available).
    """

    preset: str = param(
        '',
        description="Model preset from models/registry.yaml ('' = no model)",
        choices=MODEL_PRESETS,
        read_only=True,
    )
    checkpoint_path: str = param(
        '',
        description="Local checkpoint folder overriding the preset's ('' = preset's)",
        read_only=True,
    )
    device: str = param('auto', description="'cpu', 'cuda', 'cuda:N' or 'auto'", read_only=True)

    def __post_init__(self) -> None:
        check_fields(self)
        ok = self.device in ('auto', 'cpu', 'cuda') or (
            self.device.startswith('cuda:') and self.device[5:].isdigit()
        )
        if not ok:
            raise ConfigError(
                f"ModelConfig.device = {self.device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
            )


@dataclass(frozen=True)
class StatusConfig:
    """Health reporting.

    Args:
        rate_hz: rate of ``scene_status`` and ``/diagnostics`` messages.
    """

    rate_hz: float = param(
        1.0,
        description='Rate of scene_status and /diagnostics',
        bounds=(0.1, 50.0),
        unit='Hz',
        read_only=True,
    )

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class SnapshotConfig:
    """Where scene snapshots live (services ``~/save_scene`` and ``~/load_scene``).

    Args:
        directory: the one folder requests may name files in; '' means ``$ROS_HOME/spa3r_scenes``
            (``ROS_HOME`` defaulting to ``~/.ros``), resolved when the node is configured.
    """

    directory: str = param(
        '',
        description="Folder of ~/save_scene and ~/load_scene files ('' = $ROS_HOME/spa3r_scenes)",
        read_only=True,
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if '\0' in self.directory:
            raise ConfigError('SnapshotConfig.directory contains a NUL character')


@dataclass(frozen=True)
class NodeConfig:
    """Everything spa3r_node reads from its parameters.

    Args:
        autostart: configure and activate the node on start-up (also without a launch file).
        inputs: camera inputs.
        scene: the scene engine (ingest queue, keyframes, updates, answer format).
        query: action-server limits and defaults.
        model: the model and its device.
        status: health reporting.
        snapshots: where scene snapshots are saved and loaded.
    """

    autostart: bool = param(
        False, description='Configure and activate on start-up', read_only=True
    )
    inputs: InputsConfig = param(default_factory=InputsConfig, description='Camera inputs')
    scene: SceneConfig = param(default_factory=SceneConfig, description='Scene engine')
    query: QueryConfig = param(default_factory=QueryConfig, description='Action server limits')
    model: ModelConfig = param(default_factory=ModelConfig, description='Model and device')
    status: StatusConfig = param(default_factory=StatusConfig, description='Health reporting')
    snapshots: SnapshotConfig = param(
        default_factory=SnapshotConfig, description='Scene snapshot files'
    )

    def __post_init__(self) -> None:
        check_fields(self)
