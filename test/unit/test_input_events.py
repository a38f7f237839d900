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

"""InputEvents: lost messages and incompatible QoS counted per topic, with the fix named."""

from spa3r_ros.ros.input_events import InputEvents


def test_counts_and_warnings_name_the_topic_and_the_override():
    events = InputEvents()
    assert events.frames_lost == 0 and events.warnings() == []
    events.message_lost('/cam/image_raw', 3)
    events.message_lost('/cam/image_raw', 2)
    events.message_lost('/other', 0)
    events.incompatible_qos('/cam2', 1, 'RELIABILITY')
    assert events.frames_lost == 5 and events.incompatible_qos_events == 1
    lost, incompatible = events.warnings()
    assert '5 messages on /cam/image_raw were lost' in lost
    assert 'qos_overrides./cam/image_raw.subscription.reliability: reliable' in lost
    assert '/cam2' in incompatible and 'RELIABILITY' in incompatible


def test_negative_changes_never_decrease_a_count():
    events = InputEvents()
    events.message_lost('/cam', 4)
    events.message_lost('/cam', -4)
    assert events.frames_lost == 4
